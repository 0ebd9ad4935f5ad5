"""Tests for mtcnn_lab.lab.dataset: manifests, evaluation items, C++ reference attachment, errors."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from mtcnn_lab.errors import InputError
from mtcnn_lab.lab import dataset as D

from .conftest import DEV_REFERENCE as REFERENCE
from .conftest import NO_SHARED, SAMPLES, needs_shared

# samples/README.md: decodable frames and the frames extracted at 20/50/80 %
SAMPLE_VIDEOS = {
    "2015-10-15-15-14.avi": [168, 421, 673],
    "changeLighting.wmv": [17, 44, 70],
    "default.wmv": [57, 144, 230],
    "multi_face.avi": [140, 351, 561],
}

REPO_MANIFEST = Path(__file__).resolve().parents[1] / "data" / "manifest.json"


def _sha(image: np.ndarray) -> str:
    return hashlib.sha256(image.tobytes()).hexdigest()


def _raises(fn, *args, match: str | None = None, names: object = None, **kwargs) -> str:
    """Call fn; expect an InputError with a one-line message (containing ``match`` and ``names``)."""
    with pytest.raises(InputError) as info:
        fn(*args, **kwargs)
    msg = str(info.value)
    assert msg and "\n" not in msg, msg
    if match is not None:
        assert match in msg, msg
    if names is not None:
        assert str(names) in msg, msg
    return msg


# --------------------------------------------------------------------------------------------
# the default manifest on ../shared
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def samples_dataset():
    if not REFERENCE.is_file() or not SAMPLES.is_dir():
        pytest.skip(NO_SHARED)
    return D.load_manifest(REPO_MANIFEST)


@pytest.fixture(scope="module")
def reference_by_image():
    if not REFERENCE.is_file():
        pytest.skip(NO_SHARED)
    return {r["image"]: r for r in json.loads(REFERENCE.read_text())["results"]}


def _reference_name(item: D.EvalItem) -> str:
    """The reference's image name for an item: the PNG-frame convention for video frames."""
    if item.frame is None:
        return item.id
    return f"frames/{Path(item.id.split('#')[0]).stem}_f{item.frame}.png"


@pytest.mark.parametrize("where", [".", "notebooks", "mtcnn_lab/lab/dataset"])
def test_default_manifest_is_found_from_the_repository_or_any_folder_below_it(monkeypatch, where):
    # JupyterLab, VS Code and classic Jupyter start a notebook's kernel in notebooks/, scripts run from the root
    monkeypatch.delenv(D.MANIFEST_ENV, raising=False)
    monkeypatch.chdir(REPO_MANIFEST.parents[1] / where)
    assert D.default_manifest() == REPO_MANIFEST.parents[1].absolute() / "data" / "manifest.json"
    assert D.default_manifest().resolve() == REPO_MANIFEST.resolve()


def test_no_project_above_the_working_directory_is_one_line_naming_where_it_looked(monkeypatch, tmp_path):
    monkeypatch.delenv(D.MANIFEST_ENV, raising=False)
    inner = tmp_path / "study" / "notebooks"
    inner.mkdir(parents=True)
    monkeypatch.chdir(inner)
    with pytest.raises(InputError) as info:
        D.load_manifest()
    message = str(info.value)
    assert "\n" not in message and str(inner) in message and "any folder above it" in message
    assert "manifest=" in message
    # a study folder laid out like the repository is a project too
    (tmp_path / "study" / "data").mkdir()
    (tmp_path / "study" / "data" / "manifest.json").write_text("{}")
    assert D.default_manifest() == tmp_path / "study" / "data" / "manifest.json"


@needs_shared
def test_default_manifest_items(samples_dataset, reference_by_image):
    ds = samples_dataset
    assert ds.name == "openface-samples"
    assert len(ds) == 50
    ids = [item.id for item in ds]
    assert len(set(ids)) == 50
    assert set(ds.groups) == {"stills", "image_sequence", "2015-10-15-15-14", "changeLighting", "default",
                              "multi_face"}
    groups = ds.by_group()
    assert len(groups["stills"]) == 8 and len(groups["image_sequence"]) == 30
    for video, frames in SAMPLE_VIDEOS.items():
        members = groups[Path(video).stem]
        assert [it.id for it in members] == [f"{video}#{k}" for k in frames]
        assert all(it.source == SAMPLES / video and it.frame_png is not None for it in members)
    assert "sample1.jpg" in ids and "image_sequence/001.jpg" in ids
    assert ds.reference_meta is not None and "opencv" in ds.reference_meta
    # every reference entry is covered, once
    assert sorted(_reference_name(it) for it in ds) == sorted(reference_by_image)


@needs_shared
def test_default_manifest_pixels_and_faces(samples_dataset, reference_by_image):
    for item in samples_dataset:
        ref = reference_by_image[_reference_name(item)]
        assert item.cpp_faces == ref["faces"], item.id
        assert item.cpp is not None and item.cpp["image"] == ref["image"]
        assert (item.width, item.height) == (ref["width"], ref["height"])
        image = item.load()
        assert image.dtype == np.uint8 and image.shape == (ref["height"], ref["width"], 3)
        assert _sha(image) == ref["pixels_bgr_sha256"], item.id


@needs_shared
def test_default_manifest_decoded_video_frames(samples_dataset):
    # changeLighting decodes to the same pixels with every OpenCV build checked (samples/README.md)
    items = samples_dataset.by_group()["changeLighting"]
    assert all(it.decodes_video(True) and not it.decodes_video() for it in items)
    sub = D.Dataset("cl", tuple(items))
    got = {it.id: _sha(img) for it, img in sub.iter_images(decode_video=True)}
    assert got == {it.id: it.cpp["pixels_bgr_sha256"] for it in items}


@needs_shared
def test_default_manifest_quick(samples_dataset):
    quick = D.load_manifest(REPO_MANIFEST, quick=6)
    again = D.load_manifest(REPO_MANIFEST, quick=6)
    assert [it.id for it in quick] == [it.id for it in again]
    assert len(quick) == 6
    assert set(quick.groups) == set(samples_dataset.groups)  # one per group
    full_ids = [it.id for it in samples_dataset]
    assert [it.id for it in quick] == [i for i in full_ids if i in {it.id for it in quick}]  # original order
    assert "multi_face.avi#351" in {it.id for it in quick}  # the middle frame
    assert len(D.load_manifest(REPO_MANIFEST, quick=12).by_group()["stills"]) == 2
    assert len(D.load_manifest(REPO_MANIFEST, quick=500)) == 50


# --------------------------------------------------------------------------------------------
# your own videos (no ../shared needed)
# --------------------------------------------------------------------------------------------

VIDEOS = {"a.avi": (20, 64, 48, 0), "b.avi": (13, 80, 64, 5)}  # frames, width, height, value offset


def _value(offset: int, index: int) -> int:
    return 10 * index + offset


def _make_videos(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, (n, w, h, offset) in VIDEOS.items():
        writer = cv2.VideoWriter(str(folder / name), cv2.VideoWriter_fourcc(*"MJPG"), 10, (w, h))
        assert writer.isOpened()
        for i in range(n):
            writer.write(np.full((h, w, 3), _value(offset, i), np.uint8))
        writer.release()
    return folder


@pytest.fixture()
def videos(tmp_path) -> Path:
    return _make_videos(tmp_path / "videos")


def _expected_frames(name: str) -> list[int]:
    n = VIDEOS[name][0]
    return [int(p * n) for p in (0.2, 0.5, 0.8)]


def _check_frame(item: D.EvalItem, image: np.ndarray) -> None:
    n, w, h, offset = VIDEOS[Path(item.source).name]
    assert image.shape == (h, w, 3) and image.dtype == np.uint8
    assert abs(float(image.mean()) - _value(offset, item.frame)) < 3, (item.id, image.mean())


def test_write_manifest_for_folder(videos, tmp_path):
    out = D.write_manifest_for_folder(videos, tmp_path / "study.json")
    data = json.loads(out.read_text())
    assert data["root"] == "videos"  # relative to the manifest's folder
    assert data["positions"] == [0.2, 0.5, 0.8]
    assert [v["path"] for v in data["videos"]] == ["a.avi", "b.avi"]
    assert [v["n_frames"] for v in data["videos"]] == [20, 13]
    assert "reference" not in data

    ds = D.load_manifest(out)
    assert ds.reference is None and ds.reference_meta is None
    assert ds.groups == ("a", "b")
    assert [it.id for it in ds] == [f"{name}#{k}" for name in VIDEOS for k in _expected_frames(name)]
    for item in ds:
        assert item.frame == int(item.id.split("#")[1]) and item.frame_png is None
        assert item.cpp_faces is None and item.cpp is None and not item.has_reference
        _check_frame(item, item.load())
    loaded = list(ds.iter_images())
    assert [it.id for it, _ in loaded] == [it.id for it in ds]
    for (_, image), again in zip(loaded, ds, strict=True):
        assert np.array_equal(image, again.load())

    quick = D.load_manifest(out, quick=2)
    assert [it.id for it in quick] == ["a.avi#10", "b.avi#6"]
    assert [it.id for it in D.load_manifest(out, quick=2)] == ["a.avi#10", "b.avi#6"]

    _raises(D.write_manifest_for_folder, videos, out, match="already exists", names=out)
    D.write_manifest_for_folder(videos, out, positions=[0.0, 1.0], overwrite=True)
    assert [it.id for it in D.load_manifest(out)] == ["a.avi#0", "a.avi#19", "b.avi#0", "b.avi#12"]


def _face(x: float) -> dict:
    return {"bbox": [x, 2.0, 30.0, 30.0], "confidence": 0.9,
            "landmarks": [[x + 5, 10.0], [x + 20, 10.0], [x + 12, 18.0], [x + 6, 25.0], [x + 18, 25.0]]}


def test_reference_attaches_video_frames(videos, tmp_path):
    ref = tmp_path / "cpp.json"
    ref.write_text(json.dumps({"meta": {"tool": "openface"}, "results": [
        {"image": "a.avi", "frame": 4, "width": 64, "height": 48, "faces": [_face(1.0)]},
        {"image": str(videos / "b.avi"), "frame": 6, "width": 80, "height": 64, "faces": []},
        {"image": "b.avi", "frame": 7, "error": "could not read"},
    ]}))
    # a hand-written manifest: glob, positions and reference relative to the manifest's folder
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"root": "videos", "videos": "*.avi", "positions": [0.2, 0.5, 0.8],
                                    "reference": "cpp.json"}))
    ds = D.load_manifest(manifest)
    assert ds.name == tmp_path.name and ds.reference_meta == {"tool": "openface"}
    got = {it.id: it.cpp_faces for it in ds}
    assert got == {"a.avi#4": [_face(1.0)], "a.avi#10": None, "a.avi#16": None,
                   "b.avi#2": None, "b.avi#6": [], "b.avi#10": None}
    assert ds["a.avi#4"].cpp["width"] == 64
    assert any("error" in note for note in ds.notes)

    # the same via write_manifest_for_folder(reference=...)
    out = D.write_manifest_for_folder(videos, tmp_path / "written.json", reference=ref)
    assert json.loads(out.read_text())["reference"] == "cpp.json"
    assert {it.id: it.cpp_faces for it in D.load_manifest(out)} == got

    # items from the reference alone
    manifest.write_text(json.dumps({"root": "videos", "reference": "cpp.json", "items": "all-in-reference"}))
    ds = D.load_manifest(manifest)
    assert [it.id for it in ds] == ["a.avi#4", "b.avi#6"]
    _check_frame(ds["a.avi#4"], ds["a.avi#4"].load())


def test_png_frames_and_item_lists(videos, tmp_path):
    # a pre-extracted frame (PNG-frame convention), a still, an image sequence in a subfolder
    (videos / "frames").mkdir()
    png = np.full((48, 64, 3), 77, np.uint8)
    assert cv2.imwrite(str(videos / "frames" / "a_f10.png"), png)
    still = np.zeros((40, 50, 3), np.uint8)
    still[:, :, 2] = 200
    assert cv2.imwrite(str(videos / "still.png"), still)
    (videos / "seq").mkdir()
    for i in range(3):
        assert cv2.imwrite(str(videos / "seq" / f"{i:03d}.png"), np.full((8, 8, 3), i, np.uint8))
    ref = tmp_path / "cpp.json"
    ref.write_text(json.dumps({"meta": {}, "results": [
        {"image": "frames/a_f10.png", "width": 64, "height": 48, "faces": [_face(3.0)]},
        {"image": "still.png", "frame": None, "width": 50, "height": 40, "faces": [_face(4.0)]},
    ]}))
    manifest = tmp_path / "m.json"
    manifest.write_text(json.dumps({
        "_comment": "comments are keys starting with _",
        "name": "mixed", "root": "videos", "reference": "cpp.json",
        "items": ["still.png", "seq/*.png", "b.avi#3", {"image": "a.avi", "frame": 1, "group": "special"}],
        "videos": ["a.avi"],
    }))
    ds = D.load_manifest(manifest)
    assert [it.id for it in ds] == ["still.png", "seq/000.png", "seq/001.png", "seq/002.png", "b.avi#3",
                                    "a.avi#1", "a.avi#4", "a.avi#10", "a.avi#16"]
    assert ds.groups == ("stills", "seq", "b", "special", "a")
    item = ds["a.avi#10"]
    assert item.frame_png == videos / "frames" / "a_f10.png" and item.cpp_faces == [_face(3.0)]
    assert np.array_equal(item.load(), png)  # the PNG, not the decoded frame
    _check_frame(item, item.load(decode_video=True))
    assert ds["still.png"].cpp_faces == [_face(4.0)] and np.array_equal(ds["still.png"].load(), still)
    assert ds["seq/002.png"].cpp_faces is None and int(ds["seq/002.png"].load()[0, 0, 0]) == 2
    assert dict((it.id, img.shape) for it, img in ds.iter_images())["a.avi#10"] == (48, 64, 3)

    # all-in-reference turns the frame PNG into an item of its video
    manifest.write_text(json.dumps({"root": "videos", "reference": "cpp.json", "items": "all-in-reference"}))
    ds = D.load_manifest(manifest)
    assert [(it.id, it.group, it.frame) for it in ds] == [("a.avi#10", "a", 10), ("still.png", "stills", None)]
    # ... and a frame PNG whose video is gone is still an item
    (videos / "a.avi").unlink()
    ds = D.load_manifest(manifest)
    assert [(it.id, it.group, it.frame) for it in ds][0] == ("frames/a_f10.png", "a", 10)
    assert np.array_equal(ds[0].load(), png) and ds[0].cpp_faces == [_face(3.0)]


def test_env_var_overrides_default(videos, tmp_path, monkeypatch):
    out = D.write_manifest_for_folder(videos, tmp_path / "env.json")
    monkeypatch.setenv(D.MANIFEST_ENV, str(out))
    assert D.default_manifest() == out
    assert len(D.load_manifest()) == 6
    assert len(D.load_manifest(quick=1)) == 1
    missing = tmp_path / "nope.json"
    monkeypatch.setenv(D.MANIFEST_ENV, str(missing))
    _raises(D.load_manifest, match=D.MANIFEST_ENV, names=missing)


# --------------------------------------------------------------------------------------------
# errors: one line, naming the file
# --------------------------------------------------------------------------------------------


def _manifest(tmp_path: Path, data: object, name: str = "m.json") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def test_manifest_errors(videos, tmp_path):
    missing = tmp_path / "missing.json"
    _raises(D.load_manifest, missing, match="not found", names=missing)
    _raises(D.load_manifest, tmp_path, match="directory", names=tmp_path)
    bad = _manifest(tmp_path, '{"root": "videos",')
    _raises(D.load_manifest, bad, match="not valid JSON", names=bad)
    m = _manifest(tmp_path, ["videos"])
    _raises(D.load_manifest, m, match="JSON object", names=m)
    m = _manifest(tmp_path, {"root": "videos", "videos": "*.avi", "refrence": "x.json"})
    _raises(D.load_manifest, m, match="'refrence'", names=m)
    m = _manifest(tmp_path, {"root": "no_such_folder", "videos": "*.avi"})
    _raises(D.load_manifest, m, match="does not exist", names=tmp_path / "no_such_folder")
    m = _manifest(tmp_path, {"root": "videos", "videos": "*.avi", "reference": "nope.json"})
    _raises(D.load_manifest, m, match="not found", names=tmp_path / "nope.json")
    m = _manifest(tmp_path, {"root": "videos", "videos": ["a.avi", "c.avi"]})
    _raises(D.load_manifest, m, match="not found", names=videos / "c.avi")
    m = _manifest(tmp_path, {"root": "videos", "videos": "*.mp4"})
    _raises(D.load_manifest, m, match="matches no video", names="*.mp4")
    m = _manifest(tmp_path, {"root": "videos", "items": "all-in-reference"})
    _raises(D.load_manifest, m, match="needs a \"reference\"", names=m)
    m = _manifest(tmp_path, {"root": "videos"})
    _raises(D.load_manifest, m, match="nothing to evaluate", names=m)
    m = _manifest(tmp_path, {"root": "videos", "videos": "*.avi", "positions": [0.5, 1.5]})
    _raises(D.load_manifest, m, match="[0, 1]", names=m)
    m = _manifest(tmp_path, {"root": "videos", "videos": [{"path": "a.avi", "frames": [-1]}]})
    _raises(D.load_manifest, m, match="frame indices", names=m)
    m = _manifest(tmp_path, {"root": "videos", "videos": "*.avi"})
    _raises(D.load_manifest, m, quick=0, match="quick")


def test_reference_errors(videos, tmp_path):
    ref = tmp_path / "cpp.json"
    m = _manifest(tmp_path, {"root": "videos", "videos": "*.avi", "reference": "cpp.json"})
    ref.write_text("{not json")
    _raises(D.load_manifest, m, match="not valid JSON", names=ref)
    ref.write_text(json.dumps({"meta": {}}))
    _raises(D.load_manifest, m, match="\"results\"", names=ref)
    ref.write_text(json.dumps({"results": [{"image": "a.avi", "frame": 4, "faces": [{"bbox": [1, 2]}]}]}))
    _raises(D.load_manifest, m, match="bbox", names=ref)
    ref.write_text(json.dumps({"results": [{"image": "a.avi", "frame": 4, "faces": []},
                                           {"image": "a.avi", "frame": 4, "faces": []}]}))
    _raises(D.load_manifest, m, match="twice", names=ref)
    ref.write_text(json.dumps({"results": [{"image": "gone.avi", "frame": 4, "faces": []}]}))
    m2 = _manifest(tmp_path, {"root": "videos", "reference": "cpp.json", "items": "all-in-reference"}, "m2.json")
    _raises(D.load_manifest, m2, match="not found", names=videos / "gone.avi")


def test_load_errors(videos, tmp_path):
    # a frame beyond the video's end, and a video whose size differs from the reference's
    m = _manifest(tmp_path, {"root": "videos", "videos": [{"path": "a.avi", "frames": [25]}]})
    item = D.load_manifest(m)[0]
    _raises(item.load, match="only 20 frames decode", names=videos / "a.avi")
    ref = _manifest(tmp_path, {"results": [{"image": "b.avi", "frame": 2, "width": 640, "height": 480,
                                            "faces": []}]}, "cpp.json")
    m = _manifest(tmp_path, {"root": "videos", "videos": "b.avi", "reference": ref.name})
    item = D.load_manifest(m)["b.avi#2"]
    _raises(item.load, match="80x64", names=videos / "b.avi")


def test_write_manifest_errors(videos, tmp_path):
    missing = tmp_path / "none"
    _raises(D.write_manifest_for_folder, missing, tmp_path / "m.json", match="does not exist", names=missing)
    empty = tmp_path / "empty"
    empty.mkdir()
    _raises(D.write_manifest_for_folder, empty, tmp_path / "m.json", match="no video", names=empty)
    _raises(D.write_manifest_for_folder, videos, tmp_path, match="directory", names=tmp_path)
    _raises(D.write_manifest_for_folder, videos, tmp_path / "m.json", positions=[2.0], match="[0, 1]")
    _raises(D.write_manifest_for_folder, videos, tmp_path / "m.json", reference=tmp_path / "cpp.json",
            match="not found", names=tmp_path / "cpp.json")
    (videos / "broken.avi").write_bytes(b"not a video at all")
    _raises(D.write_manifest_for_folder, videos, tmp_path / "m.json", names=videos / "broken.avi")
    assert not (tmp_path / "m.json").exists()


def test_missing_shared_message(tmp_path):
    # the default manifest's paths, from a folder with no ../shared beside it
    data = json.loads(REPO_MANIFEST.read_text())
    folder = tmp_path / "checkout" / "data"
    folder.mkdir(parents=True)
    m = _manifest(folder, data, "manifest.json")
    msg = _raises(D.load_manifest, m, match="shared/ folder beside the checkout", names=tmp_path / "shared" / "samples")
    assert D.MANIFEST_ENV in msg


def test_cli(videos, tmp_path, capsys):
    from mtcnn_lab.cli import main

    out = tmp_path / "cli.json"
    assert main(["manifest", "write", str(videos), str(out), "--positions", "0.5"]) == 0
    assert "2 items in 2 groups" in capsys.readouterr().out
    assert main(["manifest", "show", str(out)]) == 0
    assert "a.avi#10" in capsys.readouterr().out
    assert main(["manifest", "show", str(tmp_path / "missing.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1


def test_the_openface_cache_to_compare_with(monkeypatch, tmp_path):
    from mtcnn_lab.lab.project import openface_models

    monkeypatch.delenv("OPENFACE_MODELS_DIR", raising=False)
    (tmp_path / "study" / "data").mkdir(parents=True)
    (tmp_path / "study" / "data" / "manifest.json").write_text("{}")
    (tmp_path / "study" / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "study" / "notebooks")
    assert openface_models() is None  # no shared/OpenFaceModels beside the project: the runtime's own cache
    (tmp_path / "shared" / "OpenFaceModels").mkdir(parents=True)
    assert openface_models() == tmp_path / "shared" / "OpenFaceModels"
    assert openface_models("/elsewhere") == Path("/elsewhere")
    monkeypatch.setenv("OPENFACE_MODELS_DIR", "/cache")
    assert openface_models() is None  # the runtime reads the variable itself
