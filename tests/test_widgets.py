"""The notebook frame viewer: pure rendering/readout and the widget callbacks."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

pytest.importorskip("ipywidgets")

from mtcnn_lab.cascade.boxes import iou  # noqa: E402
from mtcnn_lab.detections import Detections  # noqa: E402
from mtcnn_lab.lab.figures import to_bgr  # noqa: E402
from mtcnn_lab.lab.widgets import FrameViewer  # noqa: E402


def make_detections(boxes: list[list[float]], confidences: list[float] | None = None) -> Detections:
    """Detections with the given boxes and landmarks at fixed spots inside each box."""
    b = np.asarray(boxes, np.float32).reshape(-1, 4)
    n = len(b)
    rel = np.array([[0.3, 0.35], [0.7, 0.35], [0.5, 0.55], [0.35, 0.75], [0.65, 0.75]])
    landmarks = b[:, None, :2].astype(np.float64) + rel[None] * b[:, None, 2:].astype(np.float64)
    conf = np.asarray(confidences if confidences is not None else [0.99] * n, np.float32)
    return Detections(b, conf, landmarks, b.copy(), np.zeros((n, 4), np.int64), np.zeros((n, 16), np.float32))


def cpp_faces(boxes: list[list[float]]) -> list[dict]:
    det = make_detections(boxes, [0.9] * len(boxes))
    return [{"bbox": f["bbox"], "confidence": f["confidence"], "landmarks": f["landmarks"]} for f in det.faces()]


FRAME_BOXES = [
    [[20, 20, 40, 40]],
    [[10, 30, 30, 30], [100, 40, 36, 36]],
    [],
]
CPP_BOXES = [
    [[22, 21, 40, 38]],
    [[101, 41, 35, 36], [10, 30, 30, 30]],  # other order than Python's
    [[50, 50, 20, 20]],
]


@pytest.fixture()
def viewer() -> FrameViewer:
    rng = np.random.default_rng(0)
    frames = [(f"frame_{i}.png", rng.integers(0, 60, (120, 160, 3), dtype=np.uint8)) for i in range(3)]
    results = {
        "numpy": [make_detections(b) for b in FRAME_BOXES],
        "torch-cpu": [make_detections([[x + 5, y, w, h] for x, y, w, h in b]) for b in FRAME_BOXES],
    }
    return FrameViewer(frames, results, cpp=[cpp_faces(b) for b in CPP_BOXES])


def test_slider_changes_image_and_readout(viewer):
    assert viewer.widget.children  # the VBox
    first_image, first_text = bytes(viewer.image.value), viewer.info.value
    assert first_image.startswith(b"\x89PNG") and "frame_0.png" in first_text
    assert viewer.slider.value == 1 and "view 1/3" in first_text  # views from 1 in the slider and the readout
    viewer.slider.value = 2
    assert bytes(viewer.image.value) != first_image
    assert "frame_1.png" in viewer.info.value and "view 2/3" in viewer.info.value and viewer.info.value != first_text
    assert viewer.index == 1
    shown = cv2.imdecode(np.frombuffer(viewer.image.value, np.uint8), cv2.IMREAD_COLOR)
    np.testing.assert_array_equal(shown, viewer.render(1, "numpy"))


def test_toggles_change_the_rendered_image(viewer):
    both = viewer.render(0, "numpy", True, True)
    only_cpp = viewer.render(0, "numpy", True, False)
    only_python = viewer.render(0, "numpy", False, True)
    nothing = viewer.render(0, "numpy", False, False)
    np.testing.assert_array_equal(nothing, viewer.frames[0][1])
    assert len({a.tobytes() for a in (both, only_cpp, only_python, nothing)}) == 4
    # colours: C++ pixels in the cpp colour, Python pixels in the python colour
    assert (only_cpp == to_bgr("cpp")).all(axis=2).any()
    assert (only_python == to_bgr("python")).all(axis=2).any()
    assert not (only_python == to_bgr("cpp")).all(axis=2).any()

    before = bytes(viewer.image.value)
    viewer.show_cpp.value = False
    assert bytes(viewer.image.value) != before
    viewer.show_python.value = False
    shown = cv2.imdecode(np.frombuffer(viewer.image.value, np.uint8), cv2.IMREAD_COLOR)
    np.testing.assert_array_equal(shown, nothing)


def test_iou_readout_matches_boxes_iou(viewer):
    expected = float(iou(np.float32([[20, 20, 40, 40]]), np.float32([[22, 21, 40, 38]]))[0, 0])
    stats = viewer.stats(0, "numpy")
    assert stats["pairs"] == [(0, 0, pytest.approx(expected, abs=1e-12))]
    assert stats["mean_iou"] == pytest.approx(expected, abs=1e-12)
    text = viewer.readout(0, "numpy")
    assert f"IoU {expected:.6f}" in text and f"mean IoU {expected:.6f}" in text
    assert "1 faces | C++: 1 faces" in text

    # frame 1: faces matched across different orders, both IoUs and their mean
    stats = viewer.stats(1, "numpy")
    ious = iou(np.float32(FRAME_BOXES[1]), np.float32(CPP_BOXES[1]))
    assert [(i, j) for i, j, _ in stats["pairs"]] == [(0, 1), (1, 0)]
    assert stats["pairs"][0][2] == pytest.approx(ious[0, 1]) and stats["pairs"][1][2] == pytest.approx(ious[1, 0])
    assert stats["mean_iou"] == pytest.approx((ious[0, 1] + ious[1, 0]) / 2)
    assert f"mean IoU {stats['mean_iou']:.6f}" in viewer.readout(1, "numpy")

    # frame 2: Python found nothing, the C++ face is unmatched
    stats = viewer.stats(2, "numpy")
    assert stats["pairs"] == [] and stats["mean_iou"] is None and stats["unmatched_cpp"] == [0]
    assert "mean IoU n/a" in viewer.readout(2, "numpy")


def test_backend_dropdown_switches_results(viewer):
    assert list(viewer.backend_dropdown.options) == ["numpy", "torch-cpu"]
    before_image, before_text = bytes(viewer.image.value), viewer.info.value
    viewer.backend_dropdown.value = "torch-cpu"
    assert bytes(viewer.image.value) != before_image
    assert "torch-cpu" in viewer.info.value and viewer.info.value != before_text
    shifted = float(iou(np.float32([[25, 20, 40, 40]]), np.float32([[22, 21, 40, 38]]))[0, 0])
    assert f"IoU {shifted:.6f}" in viewer.readout(0, "torch-cpu")
    with pytest.raises(KeyError):
        viewer.readout(0, "nope")


def test_big_frames_are_downscaled_with_their_boxes():
    frame = np.zeros((1000, 2000, 3), np.uint8)
    det = make_detections([[400, 300, 600, 400]])
    big = FrameViewer([("big", frame)], {"numpy": [det]}, cpp=None, max_width=500)
    image, scale, origin = big.view(0)
    assert image.shape == (250, 500, 3) and scale == 0.25 and origin == (0, 0)
    drawn = big.render(0, show_cpp=False)
    assert drawn.shape == (250, 500, 3)
    mask = (drawn != 0).any(axis=2)
    ys, xs = np.nonzero(mask)
    # the box x 400..999, y 300..699 becomes 100..249.75, 75..174.75 (plus line width and landmarks inside)
    assert abs(xs.min() - 100) <= 2 and abs(xs.max() - 250) <= 2
    assert abs(ys.min() - 75) <= 2 and abs(ys.max() - 175) <= 2
    assert "shown at 0.25x" in big.readout(0)
    assert "C++: no reference" in big.readout(0)
    assert big.show_cpp.disabled
    small = FrameViewer([("small", frame[:100, :200])], {"numpy": [Detections.empty()]})
    assert small.view(0)[1] == 1.0 and small.render(0).shape == (100, 200, 3)


def test_dom_classes_and_validation(viewer):
    assert "mtcnn-viewer-slider" in viewer.slider._dom_classes
    assert "mtcnn-viewer-image" in viewer.image._dom_classes
    assert "mtcnn-viewer" in viewer.widget._dom_classes
    assert viewer.slider.min == 1 and viewer.slider.max == 3
    assert "mtcnn-viewer-zoom" in viewer.zoom_dropdown._dom_classes
    frames = [("a", np.zeros((10, 10, 3), np.uint8))]
    with pytest.raises(ValueError, match="backend 'numpy' has 0 results for 1 frames"):
        FrameViewer(frames, {"numpy": []})
    with pytest.raises(ValueError, match="needs the results of at least one backend"):
        FrameViewer(frames, {})
    with pytest.raises(ValueError):
        FrameViewer(frames, {"numpy": [Detections.empty()]}, cpp=[[], []])


def test_zoom_magnifies_the_chosen_face_with_its_boxes(viewer):
    # frame 2 (index 1): Python faces [10, 30, 30, 30] and [100, 40, 36, 36]; C++ #0 is [101, 41, 35, 36]
    viewer.slider.value = 2
    labels = list(viewer.zoom_dropdown.options)
    assert labels == ["whole frame", "Python #0", "Python #1", "C++ #0", "C++ #1"]
    x0, y0, x1, y1 = viewer.region(1, "numpy", ("python", 1))
    # the box with its own size of context: a 72 px square around the centre (118, 58), clipped to 160x120
    assert (x0, y0, x1, y1) == (82, 22, 154, 94)
    image, scale, origin = viewer.view(1, "numpy", ("python", 1))
    assert origin == (82, 22) and scale == pytest.approx(min(640 / 72, 640 / 72, 8.0))
    # nearest neighbour: every shown pixel is a frame pixel of the region
    frame = viewer.frames[1][1]
    ys, xs = np.mgrid[0:image.shape[0], 0:image.shape[1]]
    source = frame[y0 + np.minimum((ys / scale).astype(int), y1 - y0 - 1),
                   x0 + np.minimum((xs / scale).astype(int), x1 - x0 - 1)]
    assert (image == source).all(axis=2).mean() > 0.99
    drawn = viewer.render(1, "numpy", False, True, ("python", 1))
    mask = np.abs(drawn.astype(int) - np.array(to_bgr("python"))).max(axis=2) <= 60  # antialiased lines
    ys, xs = np.nonzero(mask)  # the box 100..135 x 40..75 in frame pixels, magnified around (82, 22)
    assert abs(xs.min() - (100 - 82) * scale) <= scale and abs(xs.max() - (135 - 82) * scale) <= 2 * scale
    assert abs(ys.min() - (40 - 22) * scale) <= scale and abs(ys.max() - (75 - 22) * scale) <= 2 * scale
    before = bytes(viewer.image.value)
    viewer.zoom_dropdown.value = "C++ #0"
    assert viewer.zoom == ("cpp", 0)
    assert bytes(viewer.image.value) != before and "zoom: C++ #0" in viewer.info.value
    viewer.slider.value = 1  # another frame: back to the whole frame, with that frame's faces in the menu
    assert viewer.zoom is None and viewer.zoom_dropdown.value == "whole frame"
    assert len(viewer.zoom_dropdown.options) == 3
    with pytest.raises(KeyError, match="no python face 5"):
        viewer.region(0, "numpy", ("python", 5))


def test_the_displayed_viewer_carries_a_picture_for_readers_without_widgets(viewer):
    import base64

    bundle = viewer._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    shown = cv2.imdecode(np.frombuffer(base64.b64decode(bundle["image/png"]), np.uint8), cv2.IMREAD_COLOR)
    np.testing.assert_array_equal(shown, viewer.render(0, "numpy"))
    assert bundle["text/plain"] == viewer.readout(0, "numpy")


def test_the_image_is_shown_at_its_own_width_not_stretched(viewer):
    assert viewer.image.layout.width == "160px"
    viewer.zoom_dropdown.value = "Python #0"
    assert viewer.image.layout.width == f"{viewer.view(0, 'numpy', ('python', 0))[0].shape[1]}px"


# ---------------------------------------------------------------- a user's own files: FrameViewer.from_files


def _write_run(path, entries, backend="openvino-cpu"):
    import json

    path.write_text(json.dumps({"meta": {"backend": backend}, "results": entries}))
    return path


def test_from_files_pairs_a_folder_of_images_with_json_csv_and_cpp(tmp_path):
    from mtcnn_lab.errors import InputError
    from mtcnn_lab.io.entries import error_entry, result_entry
    from mtcnn_lab.io.face_table import write_face_csv

    rng = np.random.default_rng(1)
    folder = tmp_path / "images"
    folder.mkdir()
    images = {}
    for name in ("b.png", "a.png", "c.png"):
        images[name] = rng.integers(0, 255, (90, 120, 3), dtype=np.uint8)
        cv2.imwrite(str(folder / name), images[name])
    dets = {"a.png": make_detections([[10, 12, 30, 30]]), "b.png": make_detections([[40, 20, 25, 25], [5, 5, 20, 20]])}
    entries = [result_entry(str(folder / n), None, images[n], d) for n, d in dets.items()]
    entries.append(error_entry(str(folder / "c.png"), None, "could not read"))  # c.png: no result, not shown
    ours = _write_run(tmp_path / "ours.json", entries)
    csv_path = write_face_csv(entries, tmp_path / "ours.csv")
    cpp = _write_run(tmp_path / "cpp.json", [{"image": "b.png", "faces": cpp_faces([[41, 21, 25, 24]])}])

    viewer = FrameViewer.from_files(folder, ours, cpp)
    assert [label for label, _ in viewer.frames] == ["a.png", "b.png"]  # name order, only frames with results
    assert viewer.backends == ["openvino-cpu"]
    np.testing.assert_array_equal(viewer.frames[1][1], images["b.png"])
    np.testing.assert_array_equal(viewer.python_arrays(1)[0], dets["b.png"].boxes)
    np.testing.assert_allclose(viewer.python_arrays(0)[2], dets["a.png"].landmarks)
    assert viewer.cpp_arrays(0) is None and "C++: no reference" in viewer.readout(0)  # a.png: not in the reference
    pairs = viewer.stats(1)["pairs"]
    expected = float(iou(np.float32([[40, 20, 25, 25]]), np.float32([[41, 21, 25, 24]]))[0, 0])
    assert [(i, j) for i, j, _ in pairs] == [(0, 0)] and pairs[0][2] == pytest.approx(expected)

    from_csv = FrameViewer.from_files(sorted(folder.glob("*.png")), csv_path)  # a list of paths, the CSV table
    assert [label for label, _ in from_csv.frames] == ["a.png", "b.png"] and from_csv.backends == ["ours"]
    for k in range(2):
        for got, want in zip(from_csv.python_arrays(k), viewer.python_arrays(k), strict=True):
            np.testing.assert_array_equal(got, want)

    for bad, match in [(tmp_path / "missing.json", "not found"), (cpp, None), (tmp_path / "images", None)]:
        with pytest.raises(InputError) as info:
            FrameViewer.from_files(folder / "c.png", bad) if match is None else FrameViewer.from_files(folder, bad)
        assert "\n" not in str(info.value)
    (tmp_path / "foreign.json").write_text('{"boxes": []}')
    with pytest.raises(InputError, match="no \"results\" list"):
        FrameViewer.from_files(folder, tmp_path / "foreign.json")


def test_from_files_decodes_a_video_s_frames_with_the_run_s_profile(tmp_path, monkeypatch):
    from mtcnn_lab.errors import InputError
    from mtcnn_lab.io.entries import result_entry
    from mtcnn_lab.io.face_table import write_face_csv
    from mtcnn_lab.io.videos import iter_video_frames

    clip = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 10, (96, 64))
    rng = np.random.default_rng(2)
    for _ in range(8):
        writer.write(rng.integers(0, 255, (64, 96, 3), dtype=np.uint8))
    writer.release()
    decoded = dict(iter_video_frames(clip, [2, 5], decode="upright"))
    dets = {2: make_detections([[10, 10, 30, 30]]), 5: make_detections([])}
    entries = [result_entry(str(clip), k, decoded[k], d) for k, d in dets.items()]
    import json

    ours = tmp_path / "ours.json"
    ours.write_text(json.dumps({"meta": {"backend": "numpy", "decoding": {str(clip): {"profile": "upright"}}},
                                "results": entries}))
    cpp = _write_run(tmp_path / "cpp.json", [{"image": "frames/clip_f2.png", "faces": cpp_faces([[10, 10, 30, 30]])}])
    import mtcnn_lab.lab.result_files as result_files

    asked = []
    decoder = result_files.iter_video_frames

    def recording(path, indices, decode=None):
        asked.append(decode)
        return decoder(path, indices, decode=decode)

    monkeypatch.setattr(result_files, "iter_video_frames", recording)
    viewer = FrameViewer.from_files(clip, ours, cpp)
    assert asked == ["upright"]  # the profile the run recorded
    assert [label for label, _ in viewer.frames] == ["clip.avi#2", "clip.avi#5"]
    assert "view 1/2: clip.avi#2 = OpenFace frame 3" in viewer.readout(0)
    csv_path = write_face_csv(entries, tmp_path / "ours.csv")  # a CSV records no profile: it must be given
    with pytest.raises(InputError, match="decode='PROFILE'"):
        FrameViewer.from_files(clip, csv_path)
    FrameViewer.from_files(clip, csv_path, decode="opencv-4.6")
    assert asked[-1] == "opencv-4.6"
    for (_, image), k in zip(viewer.frames, (2, 5), strict=True):
        np.testing.assert_array_equal(image, decoded[k])
    assert viewer.stats(0)["pairs"][0][2] == pytest.approx(1.0) and viewer.cpp_arrays(1) is None


def test_a_csv_of_two_folders_with_one_file_name_is_refused_not_merged(tmp_path):
    from mtcnn_lab.errors import InputError
    from mtcnn_lab.io.entries import result_entry
    from mtcnn_lab.io.face_table import write_face_csv

    image = np.zeros((60, 80, 3), np.uint8)
    entries = [result_entry(f"{folder}/img.png", None, image, make_detections([[5, 5, 20, 20]])) for folder in "ab"]
    with pytest.raises(InputError, match="share a file name"):
        FrameViewer.from_files([tmp_path / "img.png"], write_face_csv(entries, tmp_path / "two.csv"))


@pytest.mark.parametrize("box", [[150, 100, 30, 30], [-20, -10, 40, 40], [0, 0, 400, 300], [170, 130, 5, 5]])
def test_zoom_on_a_face_at_or_past_the_edge_stays_inside_the_frame(box):
    frame = np.full((120, 160, 3), 90, np.uint8)
    viewer = FrameViewer([("f", frame)], {"numpy": [make_detections([box])]})
    x0, y0, x1, y1 = viewer.region(0, "numpy", ("python", 0))
    assert 0 <= x0 < x1 <= 160 and 0 <= y0 < y1 <= 120 and x1 - x0 == y1 - y0
    image, scale, _ = viewer.view(0, "numpy", ("python", 0))
    assert image.size and scale <= 8.0
    assert viewer.render(0, zoom=("python", 0)).shape == image.shape
