"""Tests for mtcnn_lab.io (paths, images, videos, inputs): reading images and videos, frame selection,
input validation."""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mtcnn_lab.errors import InputError, ParameterError
from mtcnn_lab.io.images import _scan_jpeg, as_bgr_uint8, read_image
from mtcnn_lab.io.inputs import InputItem, iter_inputs
from mtcnn_lab.io.paths import IMAGE_SUFFIXES, VIDEO_SUFFIXES, is_video
from mtcnn_lab.io.videos import DEFAULT_POSITIONS, count_frames, frame_indices, iter_video_frames

from .conftest import DEV_REFERENCE as REFERENCE
from .conftest import NO_SHARED, SAMPLES, needs_shared

# Sample videos: frames that decode with OpenCV and the frames extracted at 20/50/80 %
# (samples/README.md).
SAMPLE_VIDEOS = {
    "2015-10-15-15-14.avi": (842, [168, 421, 673]),
    "changeLighting.wmv": (88, [17, 44, 70]),
    "default.wmv": (288, [57, 144, 230]),
    "multi_face.avi": (702, [140, 351, 561]),
}


def _sha(image: np.ndarray) -> str:
    return hashlib.sha256(image.tobytes()).hexdigest()


def _reference_entries() -> list:
    if not REFERENCE.is_file():
        return [pytest.param(None, marks=pytest.mark.skip(reason=NO_SHARED), id="no-shared")]
    results = json.loads(REFERENCE.read_text())["results"]
    return [pytest.param(r, id=r["image"]) for r in results]


def _raises(fn, *args, match: str | None = None, **kwargs) -> str:
    """Call fn, expect InputError with a one-line message; return the message."""
    with pytest.raises(InputError) as info:
        result = fn(*args, **kwargs)
        if hasattr(result, "__next__"):
            list(result)
    msg = str(info.value)
    assert msg and "\n" not in msg, msg
    assert "Traceback" not in msg
    if match is not None:
        assert match in msg, msg
    return msg


# ----------------------------------------------------------------------------------------------
# against the shared samples and the C++ reference
# ----------------------------------------------------------------------------------------------


@needs_shared
def test_reference_has_50_inputs():
    assert len(json.loads(REFERENCE.read_text())["results"]) == 50


@pytest.mark.parametrize("entry", _reference_entries())
def test_reference_pixels(entry):
    image = read_image(SAMPLES / entry["image"])
    assert image.dtype == np.uint8 and image.flags.c_contiguous
    assert image.shape == (entry["height"], entry["width"], 3)
    assert _sha(image) == entry["pixels_bgr_sha256"]


@needs_shared
@pytest.mark.parametrize("name", ["sample3_16bit_gray.png", "sample3_16bit_rgb.png"])
def test_16bit_png_becomes_uint8_bgr(name):
    path = SAMPLES / name
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert raw.dtype == np.uint16  # the file really is 16-bit
    image = read_image(path)
    assert image.dtype == np.uint8 and image.shape == (400, 640, 3)
    high = (raw >> 8).astype(np.uint8)
    expected = np.repeat(high[:, :, None], 3, axis=2) if raw.ndim == 2 else high
    np.testing.assert_array_equal(image, expected)
    if raw.ndim == 2:
        assert (image[:, :, 0] == image[:, :, 1]).all() and (image[:, :, 1] == image[:, :, 2]).all()


@pytest.fixture(scope="module")
def sample_counts() -> dict[str, int]:
    if not SAMPLES.is_dir():
        pytest.skip(NO_SHARED)
    return {name: count_frames(SAMPLES / name) for name in SAMPLE_VIDEOS}


@needs_shared
def test_changelighting_header_lies(sample_counts):
    cap = cv2.VideoCapture(str(SAMPLES / "changeLighting.wmv"))
    header = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.release()
    assert sample_counts["changeLighting.wmv"] == 88
    assert header != 88  # 90 in the container: the count must come from decoding


@needs_shared
@pytest.mark.parametrize("name", sorted(SAMPLE_VIDEOS))
def test_sample_video_selection(sample_counts, name):
    n_expected, indices = SAMPLE_VIDEOS[name]
    assert sample_counts[name] == n_expected
    assert frame_indices(n_expected, DEFAULT_POSITIONS) == indices
    assert indices == [int(p * n_expected) for p in (0.2, 0.5, 0.8)]
    stem = Path(name).stem
    for index in indices:
        assert (SAMPLES / "frames" / f"{stem}_f{index}.png").is_file()


@needs_shared
def test_iter_inputs_sample_videos_match_reference_pngs():
    """Our own sequential decode gives the canonical PNG pixels (true for the opencv-python wheel
    that wrote them; README: Debian's OpenCV 4.6 differs on multi_face frame 140)."""
    names = sorted(SAMPLE_VIDEOS)
    items = list(iter_inputs([SAMPLES / n for n in names]))
    assert [it.error for it in items] == [None] * 12
    assert [(Path(it.path).name, it.frame) for it in items] == [
        (n, i) for n in names for i in SAMPLE_VIDEOS[n][1]
    ]
    for it in items:
        png = cv2.imread(str(SAMPLES / "frames" / f"{Path(it.path).stem}_f{it.frame}.png"))
        assert _sha(it.image) == _sha(png), f"{it.path} frame {it.frame} decodes differently"


# ----------------------------------------------------------------------------------------------
# synthetic videos
# ----------------------------------------------------------------------------------------------

N_SYNTH = 23
SIZE = (64, 48)  # width, height


def _level(index: int) -> int:
    return 10 * index + 5


def _identify(frame: np.ndarray) -> int:
    """Frame index from the uniform gray level written into it (JPEG keeps it within ±5)."""
    return round((float(frame.mean()) - 5) / 10)


def _write_video(path: Path, n: int) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, SIZE)
    assert writer.isOpened()
    for i in range(n):
        writer.write(np.full((SIZE[1], SIZE[0], 3), _level(i), np.uint8))
    writer.release()
    return path


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("frames")
    files = {"video": _write_video(d / "clip.avi", N_SYNTH), "empty_video": None}
    files["empty_video"] = _write_video(d / "none.avi", 0)
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    photo = cv2.GaussianBlur(photo, (5, 5), 0)
    cv2.imwrite(str(d / "photo.png"), photo)
    cv2.imwrite(str(d / "photo.jpg"), photo)
    jpeg = (d / "photo.jpg").read_bytes()
    (d / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    (d / "random.jpg").write_bytes(rng.bytes(3000))
    (d / "random.avi").write_bytes(rng.bytes(3000))
    (d / "empty.jpg").write_bytes(b"")
    (d / "empty.avi").write_bytes(b"")
    (d / "notes.txt").write_text("not an image\n")
    (d / "photo.dat").write_bytes((d / "photo.png").read_bytes())
    (d / "clip.bin").write_bytes((d / "clip.avi").read_bytes())
    (d / "folder").mkdir()
    files.update({p.name: p for p in d.iterdir()})
    files["missing"] = d / "missing.jpg"
    files["photo"] = photo
    return files


def test_count_frames_synthetic(synth):
    assert count_frames(synth["video"]) == N_SYNTH


def test_a_video_that_decodes_far_fewer_frames_than_its_header_says_is_warned_about(synth, tmp_path, caplog):
    noisy = tmp_path / "noisy.avi"  # frames of noise, so that the frame data, not the header, fills the file
    writer = cv2.VideoWriter(str(noisy), cv2.VideoWriter_fourcc(*"MJPG"), 10, SIZE)
    rng = np.random.default_rng(0)
    for _ in range(N_SYNTH):
        writer.write(rng.integers(0, 256, (SIZE[1], SIZE[0], 3), dtype=np.uint8))
    writer.release()
    whole = noisy.read_bytes()
    short = tmp_path / "short.avi"
    short.write_bytes(whole[: len(whole) * 4 // 10])  # a copy cut short: the header still says N_SYNTH
    with caplog.at_level("WARNING", logger="mtcnn_lab.io.videos"):
        assert count_frames(noisy) == count_frames(synth["video"]) == N_SYNTH
        assert caplog.text == ""
        decodable = count_frames(short)
        assert 0 < decodable < 0.9 * N_SYNTH
        assert f"only {decodable} of the {N_SYNTH} frames its header announces decode" in caplog.text
        caplog.clear()
        assert len(list(iter_video_frames(short))) == decodable
        assert "truncated or damaged?" in caplog.text


def test_iter_all_frames_in_order(synth):
    got = list(iter_video_frames(synth["video"]))
    assert [i for i, _ in got] == list(range(N_SYNTH))
    for i, frame in got:
        assert frame.dtype == np.uint8 and frame.shape == (SIZE[1], SIZE[0], 3)
        assert frame.flags.c_contiguous
        assert _identify(frame) == i


def test_one_decoding_thread_gives_the_same_frames(synth):
    default = list(iter_video_frames(synth["video"]))
    one = list(iter_video_frames(synth["video"], decode_threads=1))
    assert [i for i, _ in one] == [i for i, _ in default]
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(one, default, strict=True))


@pytest.mark.parametrize("threads", [0, 1.5, True])
def test_decode_threads_must_be_a_positive_integer(synth, threads):
    with pytest.raises(ParameterError, match="decode_threads"):
        iter_video_frames(synth["video"], decode_threads=threads)


def test_iter_selected_frames_sorted_unique(synth):
    got = list(iter_video_frames(str(synth["video"]), [20, 3, 3, 7, np.int64(0)]))
    assert [i for i, _ in got] == [0, 3, 7, 20]
    assert [_identify(f) for _, f in got] == [0, 3, 7, 20]
    assert list(iter_video_frames(synth["video"], [])) == []


def test_iter_same_pixels_as_read(synth):
    cap = cv2.VideoCapture(str(synth["video"]))
    frames = [cap.read()[1] for _ in range(N_SYNTH)]
    cap.release()
    for i, frame in iter_video_frames(synth["video"], [1, 9, 22]):
        np.testing.assert_array_equal(frame, frames[i])


@pytest.mark.parametrize("decode", ["opencv-python", "opencv-4.6"])
def test_iter_stops_after_last_wanted(synth, monkeypatch, decode):
    grabs = []
    if decode == "opencv-python":
        real = cv2.VideoCapture

        class Counting:
            # A wrapper, not a subclass: Python subclasses of cv2.VideoCapture crash the
            # interpreter at garbage collection (opencv-python 5.0).
            def __init__(self, path):
                self._cap = real(path)

            def grab(self):
                grabs.append(1)
                return self._cap.grab()

            def __getattr__(self, name):
                return getattr(self._cap, name)

        monkeypatch.setattr(cv2, "VideoCapture", Counting)
    else:
        from mtcnn_lab.io.decode.pyav_reader import PyAVReader

        real_grab = PyAVReader.grab

        def counting_grab(self):
            grabs.append(1)
            return real_grab(self)

        monkeypatch.setattr(PyAVReader, "grab", counting_grab)
    assert [i for i, _ in iter_video_frames(synth["video"], [4], decode=decode)] == [4]
    assert len(grabs) == 5


def test_iter_index_beyond_end(synth):
    it = iter_video_frames(synth["video"], [5, N_SYNTH])
    index, _ = next(it)
    assert index == 5
    with pytest.raises(InputError) as info:
        next(it)
    msg = str(info.value)
    assert str(synth["video"]) in msg and f"only {N_SYNTH} frames decode" in msg
    assert "\n" not in msg


def test_iter_bad_indices(synth):
    _raises(iter_video_frames, synth["video"], [-1], match="negative")
    _raises(iter_video_frames, synth["video"], [1.5], match="whole number")


def test_zero_frame_video(synth):
    path = synth["empty_video"]
    _raises(count_frames, path, match=str(path))
    _raises(iter_video_frames, path, match="0 frames")
    (item,) = iter_inputs([path])
    assert item.image is None and "0 frames" in item.error


# ----------------------------------------------------------------------------------------------
# frame_indices
# ----------------------------------------------------------------------------------------------


def test_frame_indices_examples():
    assert frame_indices(88, [0.2, 0.5, 0.8]) == [17, 44, 70]
    assert frame_indices(88, [0.8, 0.2]) == [17, 70]
    assert frame_indices(10, [0.0, 1.0]) == [0, 9]
    assert frame_indices(10, 0.5) == [5]
    assert frame_indices(1, DEFAULT_POSITIONS) == [0]
    assert frame_indices(23, every=5) == [0, 5, 10, 15, 20]
    assert frame_indices(3, every=10) == [0]
    assert frame_indices(4) == [0, 1, 2, 3]


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), float("inf"), "0.5", True, None])
def test_frame_indices_bad_position(bad):
    _raises(frame_indices, 10, [0.2, bad], match="[0, 1]")


@pytest.mark.parametrize("bad", [0, -3, 1.5, True, "2"])
def test_frame_indices_bad_every(bad):
    _raises(frame_indices, 10, every=bad, match="every")


def test_frame_indices_other_errors():
    _raises(frame_indices, 10, [0.5], every=2, match="not both")
    _raises(frame_indices, 10, [], match="no frame positions")
    _raises(frame_indices, 10, "0.5")
    _raises(frame_indices, 0, match="n_frames")
    _raises(frame_indices, 2.0, match="n_frames")


@given(
    n=st.integers(1, 100_000),
    positions=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=8),
)
def test_frame_indices_positions_property(n, positions):
    got = frame_indices(n, positions)
    assert got == sorted(set(got))
    assert all(0 <= i < n for i in got)
    assert set(got) == {min(int(p * n), n - 1) for p in positions}


@given(n=st.integers(1, 10_000), every=st.one_of(st.none(), st.integers(1, 500)))
def test_frame_indices_every_property(n, every):
    got = frame_indices(n, every=every)
    assert got == sorted(set(got))
    assert all(0 <= i < n for i in got)
    assert got[0] == 0
    assert len(got) == math.ceil(n / (every or 1))


# ----------------------------------------------------------------------------------------------
# reading images and errors
# ----------------------------------------------------------------------------------------------


def test_read_image_png_and_jpg(synth):
    png = read_image(synth["photo.png"])
    np.testing.assert_array_equal(png, synth["photo"])
    jpg = read_image(str(synth["photo.jpg"]))
    assert jpg.shape == (40, 50, 3) and jpg.dtype == np.uint8
    np.testing.assert_array_equal(jpg, cv2.imread(str(synth["photo.jpg"]), cv2.IMREAD_COLOR))


def test_read_image_16bit_and_alpha(tmp_path):
    rng = np.random.default_rng(1)
    gray16 = rng.integers(0, 65536, (12, 9), dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "g16.png"), gray16)
    image = read_image(tmp_path / "g16.png")
    np.testing.assert_array_equal(image, np.repeat((gray16 >> 8).astype(np.uint8)[..., None], 3, 2))
    bgra = rng.integers(0, 256, (12, 9, 4), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "a.png"), bgra)
    np.testing.assert_array_equal(read_image(tmp_path / "a.png"), bgra[:, :, :3])


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("missing", "no such file"),
        ("folder", "is a directory"),
        ("empty.jpg", "is empty"),
        ("random.jpg", "cannot decode"),
        ("truncated.jpg", "truncated JPEG"),
        ("notes.txt", "cannot decode"),
        ("clip.avi", "is a video"),
    ],
)
def test_read_image_errors(synth, name, match):
    path = synth[name]
    msg = _raises(read_image, path, match=match)
    assert str(path) in msg


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("missing", "no such file"),
        ("folder", "is a directory"),
        ("empty.avi", "is empty"),
        ("random.avi", "cannot open video"),
        ("notes.txt", "cannot open video"),
    ],
)
def test_video_errors(synth, name, match):
    path = synth[name]
    for fn in (count_frames, iter_video_frames):
        assert str(path) in _raises(fn, path, match=match)


def test_iter_video_frames_checks_path_eagerly(synth):
    with pytest.raises(InputError):
        iter_video_frames(synth["missing"])  # no iteration needed


def test_message_is_one_line_for_odd_names(tmp_path):
    _raises(read_image, tmp_path / "a\nb.jpg", match="no such file")
    _raises(read_image, 42, match="file path")


def test_relative_missing_path_mentions_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    msg = _raises(read_image, "nope.png", match="'nope.png'")
    assert str(tmp_path) in msg


def _jpeg_with(params: dict) -> bytes:
    image = cv2.GaussianBlur(
        np.random.default_rng(2).integers(0, 256, (64, 80, 3), dtype=np.uint8), (3, 3), 0
    )
    flags = [int(v) for kv in params.items() for v in kv]
    ok, buf = cv2.imencode(".jpg", image, flags)
    assert ok
    return buf.tobytes()


@pytest.mark.parametrize(
    "params",
    [{}, {cv2.IMWRITE_JPEG_PROGRESSIVE: 1}, {cv2.IMWRITE_JPEG_RST_INTERVAL: 2}],
    ids=["baseline", "progressive", "restarts"],
)
def test_jpeg_truncation_detection(params):
    data = _jpeg_with(params)
    assert not _scan_jpeg(data)[0]
    assert not _scan_jpeg(data + b"trailing bytes\xff\xd8")[0]
    for cut in (len(data) - 2, len(data) * 2 // 3, len(data) // 3, 300, 3):
        assert _scan_jpeg(data[:cut])[0], cut
    # a complete thumbnail inside APP1 must not hide a truncated main image
    thumb = _jpeg_with({})
    app1 = b"\xff\xe1" + (len(thumb) + 2).to_bytes(2, "big") + thumb
    with_thumb = data[:2] + app1 + data[2:]
    assert not _scan_jpeg(with_thumb)[0]
    assert _scan_jpeg(with_thumb[: len(with_thumb) - len(data) // 2])[0]
    assert not _scan_jpeg(b"\x89PNG not a jpeg")[0]


# ----------------------------------------------------------------------------------------------
# as_bgr_uint8
# ----------------------------------------------------------------------------------------------


def test_as_bgr_uint8_accepts():
    bgr = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    assert as_bgr_uint8(bgr) is bgr
    flipped = bgr[:, ::-1]
    out = as_bgr_uint8(flipped)
    assert out.flags.c_contiguous
    np.testing.assert_array_equal(out, flipped)
    gray = np.arange(20, dtype=np.uint8).reshape(4, 5)
    for g in (gray, gray[:, :, None]):
        out = as_bgr_uint8(g)
        assert out.shape == (4, 5, 3) and out.flags.c_contiguous
        for c in range(3):
            np.testing.assert_array_equal(out[:, :, c], gray)
    bgra = np.arange(4 * 5 * 4, dtype=np.uint8).reshape(4, 5, 4)
    out = as_bgr_uint8(bgra)
    assert out.flags.c_contiguous
    np.testing.assert_array_equal(out, bgra[:, :, :3])


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ([[1, 2], [3, 4]], "numpy.ndarray"),
        (None, "numpy.ndarray"),
        (np.zeros((4, 5, 3), np.float32), "float32"),
        (np.zeros((4, 5, 3), np.float64), "* 255"),
        (np.zeros((4, 5, 3), np.uint16), ">> 8"),
        (np.zeros((4, 5, 3), np.int32), "int32"),
        (np.zeros((4, 5, 3), bool), "bool"),
        (np.zeros((0, 5, 3), np.uint8), "empty"),
        (np.zeros((4, 0), np.uint8), "empty"),
        (np.zeros((5,), np.uint8), "1 dimensions"),
        (np.zeros((2, 4, 5, 3), np.uint8), "(2, 4, 5, 3)"),
        (np.zeros((4, 5, 2), np.uint8), "2 channels"),
        (np.zeros((4, 5, 5), np.uint8), "5 channels"),
        (np.zeros((3, 40, 50), np.uint8), "transpose(1, 2, 0)"),
    ],
)
def test_as_bgr_uint8_rejects(value, match):
    msg = _raises(as_bgr_uint8, value, name="frames[2]", match=match)
    assert msg.startswith("frames[2]")
    if isinstance(value, np.ndarray):
        assert str(value.dtype) in msg and str(value.shape) in msg
    assert "H×W×3" in msg or "uint8" in msg


# ----------------------------------------------------------------------------------------------
# iter_inputs
# ----------------------------------------------------------------------------------------------


def test_iter_inputs_mixed(synth):
    paths = [
        str(synth["photo.png"]),
        synth["video"],
        str(synth["missing"]),
        synth["folder"],
        synth["random.jpg"],
        synth["photo.dat"],
        synth["clip.bin"],
        synth["notes.txt"],
    ]
    items = list(iter_inputs(paths))
    expected_frames = frame_indices(N_SYNTH, DEFAULT_POSITIONS)
    assert expected_frames == [4, 11, 18]
    summary = [(it.path, it.frame, it.ok) for it in items]
    assert summary == [
        (str(synth["photo.png"]), None, True),
        *[(str(synth["video"]), i, True) for i in expected_frames],
        (str(synth["missing"]), None, False),
        (str(synth["folder"]), None, False),
        (str(synth["random.jpg"]), None, False),
        (str(synth["photo.dat"]), None, True),
        *[(str(synth["clip.bin"]), i, True) for i in expected_frames],
        (str(synth["notes.txt"]), None, False),
    ]
    for it in items:
        if it.ok:
            assert it.image.dtype == np.uint8 and it.image.ndim == 3 and it.image.shape[2] == 3
            if it.frame is not None:
                assert _identify(it.image) == it.frame
        else:
            assert it.image is None and it.path in it.error and "\n" not in it.error
    assert "neither a readable image nor a readable video" in items[-1].error
    np.testing.assert_array_equal(items[0].image, synth["photo"])


def test_iter_inputs_selection(synth):
    video = synth["video"]
    assert [it.frame for it in iter_inputs([video], every=10)] == [0, 10, 20]
    assert [it.frame for it in iter_inputs(video, positions=[1.0, 0.0])] == [0, N_SYNTH - 1]
    assert [it.frame for it in iter_inputs([synth["photo.png"]], every=3)] == [None]
    for it in iter_inputs([video], every=7):
        assert _identify(it.image) == it.frame


def test_iter_inputs_bad_selection_raises_at_once(synth):
    _raises(iter_inputs, [synth["video"]], positions=[0.5], every=2, match="not both")
    _raises(iter_inputs, [synth["video"]], every=0, match="every")
    _raises(iter_inputs, [synth["video"]], positions=[2.0], match="[0, 1]")


def test_input_item_is_frozen():
    item = InputItem("x.jpg", error="bad")
    with pytest.raises(AttributeError):
        item.path = "y"  # type: ignore[misc]
    assert not item.ok and "image" not in repr(item)


def test_suffixes():
    assert is_video("a/B.AVI") and is_video(Path("x.wmv")) and not is_video("x.jpg")
    assert not is_video("video")
    for suffixes in (IMAGE_SUFFIXES, VIDEO_SUFFIXES):
        assert all(s.startswith(".") and s == s.lower() for s in suffixes)
    assert not IMAGE_SUFFIXES & VIDEO_SUFFIXES
    assert {".jpg", ".png"} <= IMAGE_SUFFIXES and {".avi", ".wmv", ".mp4"} <= VIDEO_SUFFIXES
    assert os.path.splitext("x.tar.avi")[1] in VIDEO_SUFFIXES
