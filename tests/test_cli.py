"""Tests of the ``mtcnn-lab`` command: the JSON contract (the fields of the C++ reference) and every kind of bad input.

The command runs in-process (``mtcnn_lab.cli.main``) on the bundled weights, matplotlib's
``grace_hopper.jpg`` (one face) and small MJPG videos written here; one test runs the installed
console script. Bad input must give one ``error: ...`` line naming the file and the fix, exit code
2 (1 when some of several paths failed), no traceback and no half-written file. The parity tests
at the end need ``../shared`` and are skipped without it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from matplotlib import cbook

import mtcnn_lab
from mtcnn_lab import MTCNN
from mtcnn_lab.cli import main
from mtcnn_lab.weights import models_cache as mc
from mtcnn_lab.weights.dat import write_dat
from mtcnn_lab.weights.netspec import NET_NAMES
from mtcnn_lab.weights.sets import load_weights

from .conftest import MODELS, require_shared

HOPPER = Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
N_FRAMES = 10
VIDEO_WH = (320, 240)
PX, CONF = 0.01, 1e-4


# --------------------------------------------------------------------------------------------
# fixtures and helpers


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """Work in tmp_path with an empty model cache, no consent, and no network at all."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(mc.ENV_MODELS_DIR, str(tmp_path / "no-models"))
    monkeypatch.delenv(mc.ENV_ACCEPT_LICENSE, raising=False)
    monkeypatch.delenv(mc.ENV_BASE_URL, raising=False)
    monkeypatch.setattr(mc, "_DIGESTS", {})

    def no_network(*args, **kwargs):
        raise AssertionError("the CLI tried to download something")

    monkeypatch.setattr("urllib.request.urlopen", no_network)


@pytest.fixture
def hopper(tmp_path) -> str:
    """grace_hopper.jpg copied into the working folder; returns the relative path."""
    shutil.copyfile(HOPPER, tmp_path / "hopper.jpg")
    return "hopper.jpg"


def make_frames(n: int) -> list[np.ndarray]:
    """n 320x240 frames, each with Grace Hopper's face at a different place."""
    face = cv2.resize(cv2.imread(str(HOPPER)), (150, 176), interpolation=cv2.INTER_AREA)
    frames = []
    for i in range(n):
        canvas = np.full((VIDEO_WH[1], VIDEO_WH[0], 3), 40 + 10 * i, np.uint8)
        canvas[30:206, 20 + 12 * i:170 + 12 * i] = face
        frames.append(canvas)
    return frames


def write_video(path: Path, frames: list[np.ndarray]) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, VIDEO_WH)
    assert writer.isOpened()
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


@pytest.fixture(scope="module")
def video_file(tmp_path_factory) -> Path:
    return write_video(tmp_path_factory.mktemp("video") / "clip.avi", make_frames(N_FRAMES))


@pytest.fixture
def video(tmp_path, video_file) -> str:
    shutil.copyfile(video_file, tmp_path / "clip.avi")
    return "clip.avi"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    """``mtcnn-lab argv...`` in-process: (exit code, stdout, stderr)."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str, *needles: str) -> str:
    """stderr is exactly one ``error: ...`` line that contains every needle."""
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    for needle in needles:
        assert needle in lines[0], (needle, err)
    return lines[0]


def listing(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


def make_cache(root: Path) -> dict[str, Path]:
    """A valid OpenFace cache under root (the bundled weights are bit-identical to OpenFace's)."""
    weights = load_weights("zhang2016")
    paths = {}
    for net in NET_NAMES:
        path = mc.dat_path(net, root)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(write_dat(weights.nets()[net]))
        paths[net] = path
    return paths


# --------------------------------------------------------------------------------------------
# detect: the JSON contract


def test_detect_image_writes_the_design_json(capsys, tmp_path, hopper):
    code, out, err = run(capsys, "detect", hopper, "--weights", "zhang2016", "--backend", "numpy", "--json", "out.json")
    assert code == 0, err
    assert out.strip() == "hopper.jpg: 1 face(s)" and err == ""
    data = json.loads((tmp_path / "out.json").read_text())

    meta = data["meta"]
    assert meta["backend"] == "numpy" and meta["weights"] == "zhang2016"
    assert meta["version"] == mtcnn_lab.__version__
    params = meta["params"]
    assert params["min_face"] == 60 and params["factor"] == pytest.approx(0.709)
    assert params["thresholds"] == [0.6, 0.7, 0.7]

    [entry] = data["results"]
    assert entry["image"] == "hopper.jpg" and entry["frame"] is None
    assert (entry["width"], entry["height"]) == (512, 600)
    assert "error" not in entry
    [face] = entry["faces"]
    assert len(face["bbox"]) == 4 and all(isinstance(v, float) for v in face["bbox"])
    assert face["confidence"] > 0.99
    assert np.asarray(face["landmarks"]).shape == (5, 2)
    x, y, w, h = face["bbox"]
    assert 0 <= x and 0 <= y and x + w <= 512 and y + h <= 600

    expected = MTCNN(backend="numpy", weights="zhang2016").detect(cv2.imread(str(HOPPER)))
    assert face["bbox"] == [float(v) for v in expected.boxes[0]]
    assert face["confidence"] == float(expected.confidences[0])

    assert listing(tmp_path) == {"hopper.jpg", "out.json"}, "no temp files left behind"
    reference = tmp_path / "reference.txt"
    reference.write_text("x")  # the JSON gets an ordinary file's permissions, not mkstemp's 0600
    assert (tmp_path / "out.json").stat().st_mode == reference.stat().st_mode


def test_detect_quiet_prints_nothing_and_params_reach_the_json(capsys, tmp_path, hopper):
    code, out, err = run(capsys, "detect", hopper, "--weights", "zhang2016", "--min-face", "100",
                         "--backend", "numpy", "--threads", "1", "-q", "--json", "sub/dir/out.json")
    assert (code, out, err) == (0, "", "")
    data = json.loads((tmp_path / "sub" / "dir" / "out.json").read_text())
    assert data["meta"]["params"]["min_face"] == 100
    assert len(data["results"][0]["faces"]) == 1
    assert listing(tmp_path / "sub" / "dir") == {"out.json"}


def test_detect_without_json_prints_a_line_per_image(capsys, hopper):
    code, out, err = run(capsys, "detect", hopper, hopper, "--weights", "zhang2016")
    assert code == 0 and err == ""
    assert out.splitlines() == ["hopper.jpg: 1 face(s)"] * 2


def test_auto_weights_without_a_cache_use_the_bundled_ones(capsys, tmp_path, hopper):
    code, _, err = run(capsys, "detect", hopper, "-q", "--json", "out.json")
    assert code == 0, err
    assert json.loads((tmp_path / "out.json").read_text())["meta"]["weights"] == "zhang2016"


@pytest.mark.parametrize("size", [(1, 1), (10, 10), (41, 300), (42, 42), (43, 43), (59, 59)],
                         ids=lambda s: f"{s[0]}x{s[1]}")
def test_images_below_the_minimum_face_give_no_faces(capsys, tmp_path, size):
    h, w = size
    image = cv2.resize(cv2.imread(str(HOPPER)), (w, h), interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(tmp_path / "small.png"), image)
    cv2.imwrite(str(tmp_path / "small_gray.png"), cv2.cvtColor(image, cv2.COLOR_BGR2GRAY))
    code, out, err = run(capsys, "detect", "small.png", "small_gray.png", "--weights", "zhang2016",
                         "--json", "out.json")
    assert code == 0 and err == "", err
    results = json.loads((tmp_path / "out.json").read_text())["results"]
    assert [(r["width"], r["height"], r["faces"]) for r in results] == [(w, h, [])] * 2
    assert out.splitlines() == ["small.png: 0 face(s)", "small_gray.png: 0 face(s)"]


# --------------------------------------------------------------------------------------------
# detect: the --json file


def test_existing_json_without_force_is_kept(capsys, tmp_path, hopper):
    (tmp_path / "out.json").write_text("old results\n")
    code, out, err = run(capsys, "detect", hopper, "--weights", "zhang2016", "--backend", "numpy", "--json", "out.json")
    assert code == 2
    one_error_line(err, "out.json", "already exists", "--force")
    assert out == "", "the run stops before detecting anything"
    assert (tmp_path / "out.json").read_text() == "old results\n"
    assert listing(tmp_path) == {"hopper.jpg", "out.json"}


def test_existing_json_with_force_is_replaced(capsys, tmp_path, hopper):
    (tmp_path / "out.json").write_text("old results\n")
    code, _, err = run(capsys, "detect", hopper, "--weights", "zhang2016", "-q", "--json", "out.json",
                       "--force")
    assert code == 0, err
    data = json.loads((tmp_path / "out.json").read_text())
    assert len(data["results"][0]["faces"]) == 1
    assert listing(tmp_path) == {"hopper.jpg", "out.json"}


@pytest.mark.parametrize("force", [[], ["--force"]], ids=["no-force", "force"])
def test_json_path_that_is_a_directory(capsys, tmp_path, hopper, force):
    (tmp_path / "results").mkdir()
    code, out, err = run(capsys, "detect", hopper, "--weights", "zhang2016", "--json", "results", *force)
    assert code == 2
    one_error_line(err, "results", "directory", "--json")
    assert listing(tmp_path / "results") == set()


def test_json_path_below_a_file(capsys, tmp_path, hopper):
    (tmp_path / "afile").write_text("x")
    code, _, err = run(capsys, "detect", hopper, "--weights", "zhang2016", "-q", "--json", "afile/out.json")
    assert code == 2
    one_error_line(err, "afile/out.json", "--json")
    assert (tmp_path / "afile").read_text() == "x"
    assert listing(tmp_path) == {"hopper.jpg", "afile"}


# --------------------------------------------------------------------------------------------
# detect: several paths, some bad


def test_bad_paths_are_reported_and_the_others_processed(capsys, tmp_path, hopper, video):
    data = HOPPER.read_bytes()
    (tmp_path / "truncated.jpg").write_bytes(data[: len(data) // 3])
    (tmp_path / "corrupt.png").write_bytes(np.random.default_rng(0).bytes(3000))
    (tmp_path / "corrupt.avi").write_bytes(np.random.default_rng(1).bytes(3000))
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "folder").mkdir()
    bad = {
        "missing.jpg": "no such file",
        "truncated.jpg": "truncated",
        "corrupt.png": "cannot decode",
        "corrupt.avi": "cannot open video",
        "empty.jpg": "empty",
        "notes.txt": "neither a readable image nor a readable video",
        "folder": "is a directory",
    }
    paths = [hopper, *list(bad)[:4], video, *list(bad)[4:], hopper]
    code, out, err = run(capsys, "detect", *paths, "--weights", "zhang2016", "--json", "out.json")
    assert code == 1

    results = json.loads((tmp_path / "out.json").read_text())["results"]
    assert [r["image"] for r in results] == [hopper, *list(bad)[:4], video, video, video,
                                             *list(bad)[4:], hopper]
    errors = [line for line in err.splitlines() if line]
    assert "Traceback" not in err and len(errors) == len(bad)
    by_path = {r["image"]: r for r in results}
    for (path, needle), line in zip(bad.items(), errors, strict=True):
        entry = by_path[path]
        assert needle in entry["error"] and path in entry["error"], entry
        assert "\n" not in entry["error"]
        assert entry["frame"] is None and "faces" not in entry and "width" not in entry
        assert line == f"error: {entry['error']}"
    good = [r for r in results if "error" not in r]
    assert len(good) == 5 and all(len(r["faces"]) == 1 for r in good)
    assert [r["frame"] for r in good] == [None, 2, 5, 8, None]
    assert out.splitlines() == ["hopper.jpg: 1 face(s)", "clip.avi frame 2: 1 face(s)",
                                "clip.avi frame 5: 1 face(s)", "clip.avi frame 8: 1 face(s)",
                                "hopper.jpg: 1 face(s)"]
    assert "out.json" in listing(tmp_path) and not any(n.endswith(".tmp") for n in listing(tmp_path))


def test_only_bad_paths_still_write_the_json(capsys, tmp_path):
    code, _, err = run(capsys, "detect", "missing.png", "--weights", "zhang2016", "--json", "out.json")
    assert code == 1
    one_error_line(err, "missing.png", "no such file")
    [entry] = json.loads((tmp_path / "out.json").read_text())["results"]
    assert entry["image"] == "missing.png" and "no such file" in entry["error"]


def test_odd_file_names(capsys, tmp_path):
    name = "my photo – ü.jpg"
    shutil.copyfile(HOPPER, tmp_path / name)
    code, out, err = run(capsys, "detect", name, "--weights", "zhang2016", "--json", "out.json")
    assert code == 0, err
    assert json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))["results"][0]["image"] == name
    assert out.strip() == f"{name}: 1 face(s)"


# --------------------------------------------------------------------------------------------
# detect: videos


@pytest.mark.parametrize(
    ("selection", "frames"),
    [
        ([], [2, 5, 8]),  # the default positions 0.2, 0.5, 0.8
        (["--frames", "0.2,0.5,0.8"], [2, 5, 8]),
        (["--frames", "0,1"], [0, 9]),
        (["--frames", "0.5"], [5]),
        (["--frames", "0.55,0.5,0.5"], [5]),
        (["--every", "3"], [0, 3, 6, 9]),
        (["--every", "4"], [0, 4, 8]),
        (["--every", "1"], list(range(N_FRAMES))),
        (["--every", "100"], [0]),
    ],
    ids=["default", "frames 0.2,0.5,0.8", "frames 0,1", "frames 0.5", "frames duplicates", "every 3", "every 4",
         "every 1", "every 100"],
)
def test_video_frame_selection(capsys, tmp_path, video, selection, frames):
    code, out, err = run(capsys, "detect", video, "--weights", "zhang2016", "-q", "--json", "out.json",
                         *selection)
    assert code == 0, err
    results = json.loads((tmp_path / "out.json").read_text())["results"]
    assert [r["frame"] for r in results] == frames
    assert all(r["image"] == video and (r["width"], r["height"]) == VIDEO_WH for r in results)
    assert all(len(r["faces"]) == 1 for r in results)
    # the face moves 12 px to the right per frame; the detections follow it
    xs = [r["faces"][0]["bbox"][0] for r in results]
    assert xs == sorted(xs)


def test_video_frames_equal_detect_on_the_frames(capsys, tmp_path, video):
    code, _, err = run(capsys, "detect", video, "--weights", "zhang2016", "--backend", "numpy", "-q",
                       "--json", "out.json", "--every", "5")
    assert code == 0, err
    results = json.loads((tmp_path / "out.json").read_text())["results"]
    cap = cv2.VideoCapture(video)
    decoded = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        decoded.append(frame)
    cap.release()
    assert len(decoded) == N_FRAMES
    det = MTCNN(backend="numpy", weights="zhang2016")
    for entry in results:
        assert entry["faces"] == det.detect(decoded[entry["frame"]]).faces()


@pytest.mark.parametrize(
    ("option", "needles"),
    [
        (["--frames", "1.5"], ["1.5", "[0, 1]", "0.2,0.5,0.8"]),
        (["--frames", "-0.1"], ["-0.1", "[0, 1]"]),
        (["--frames", "0.2,nan"], ["nan", "[0, 1]"]),
        (["--every", "0"], ["--every", "at least 1", "0"]),
        (["--every", "-3"], ["--every", "at least 1", "-3"]),
    ],
    ids=["frames 1.5", "frames -0.1", "frames nan", "every 0", "every -3"],
)
def test_frames_out_of_range(capsys, tmp_path, video, option, needles):
    code, out, err = run(capsys, "detect", video, "--weights", "zhang2016", "--json", "out.json", *option)
    assert code == 2
    one_error_line(err, *needles)
    assert out == ""
    assert listing(tmp_path) == {video}, "no JSON written"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--frames", "abc"], "--frames"),
        (["--frames", ""], "--frames"),
        (["--every", "1.5"], "--every"),
        (["--frames", "0.5", "--every", "2"], "not allowed with"),
        (["--weights", "vggface"], "--weights"),
        (["--min-face", "big"], "--min-face"),
    ],
    ids=["frames abc", "frames empty", "every 1.5", "frames and every", "weights vggface", "min-face big"],
)
def test_malformed_options_are_usage_errors(capsys, video, args, needle):
    with pytest.raises(SystemExit) as info:
        main(["detect", video, *args])
    assert info.value.code == 2
    _, err = capsys.readouterr()
    assert "Traceback" not in err and err.splitlines()[-1].startswith("mtcnn-lab detect: error: ")
    assert needle in err.splitlines()[-1]


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--min-face", "5"], ["min_face", "12"]),
        (["--backend", "tensorflow"], ["'tensorflow'", "numpy", "auto"]),
        (["--threads", "0"], ["--threads", "at least 1"]),
    ],
    ids=["min-face 5", "backend tensorflow", "threads 0"],
)
def test_bad_parameters_are_one_line_errors(capsys, tmp_path, hopper, args, needles):
    code, out, err = run(capsys, "detect", hopper, "--weights", "zhang2016", "--json", "out.json", *args)
    assert code == 2 and out == ""
    one_error_line(err, *needles)
    assert listing(tmp_path) == {hopper}


# --------------------------------------------------------------------------------------------
# OpenFace's weights: missing, truncated, corrupt, wrong checksum


def test_openface_weights_from_a_valid_cache(capsys, tmp_path, monkeypatch, hopper):
    root = tmp_path / "models"
    make_cache(root)
    monkeypatch.setenv(mc.ENV_MODELS_DIR, str(root))
    code, _, err = run(capsys, "detect", hopper, "--weights", "openface", "-q", "--json", "of.json")
    assert code == 0, err
    code, _, err = run(capsys, "detect", hopper, "--weights", "zhang2016", "-q", "--json", "mit.json")
    assert code == 0, err
    of, mit = (json.loads((tmp_path / name).read_text()) for name in ("of.json", "mit.json"))
    assert of["meta"]["weights"] == "openface" and mit["meta"]["weights"] == "zhang2016"
    assert of["results"] == mit["results"], "the bundled weights are bit-identical to OpenFace's"
    code, _, _ = run(capsys, "detect", hopper, "-q", "--json", "auto.json")
    assert json.loads((tmp_path / "auto.json").read_text())["meta"]["weights"] == "openface"


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:1000])


def _flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _garbage(path: Path) -> None:
    path.write_bytes(np.random.default_rng(0).bytes(path.stat().st_size))


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _too_long(path: Path) -> None:
    path.write_bytes(path.read_bytes() + b"\0" * 8)


def _remove(path: Path) -> None:
    path.unlink()


def _directory(path: Path) -> None:
    path.unlink()
    path.mkdir()


DAMAGE = {
    "truncated": (_truncate, "truncated"),
    "empty": (_empty, "0 bytes"),
    "trailing bytes": (_too_long, "bytes, expected"),
    "wrong checksum": (_flip_a_byte, "SHA-256"),
    "corrupt": (_garbage, "SHA-256"),
    "missing": (_remove, "missing"),
    "a directory": (_directory, "is a folder, not a regular file"),
}


@pytest.mark.parametrize("net", ["pnet", "onet"])
@pytest.mark.parametrize("damage", DAMAGE, ids=str)
def test_damaged_openface_weights(capsys, tmp_path, monkeypatch, hopper, damage, net):
    root = tmp_path / "models"
    paths = make_cache(root)
    damage_fn, needle = DAMAGE[damage]
    damage_fn(paths[net])
    monkeypatch.setenv(mc.ENV_MODELS_DIR, str(root))
    code, out, err = run(capsys, "detect", hopper, "--weights", "openface", "--json", "out.json")
    assert code == 2
    line = one_error_line(err, str(paths[net]), needle)
    assert "mtcnn-lab models --accept-license" in line, "the message says how to fix it"
    assert out == "" and listing(tmp_path) == {"hopper.jpg", "models"}, "nothing written"


def test_truncated_pnet_from_the_bundled_weights(capsys, tmp_path, monkeypatch, hopper):
    """The issue's case: OPENFACE_MODELS_DIR holding only a truncated PNet.dat."""
    pnet = mc.dat_path("pnet", tmp_path / "cache")
    pnet.parent.mkdir(parents=True)
    pnet.write_bytes(write_dat(load_weights("zhang2016").pnet)[:20000])
    monkeypatch.setenv("OPENFACE_MODELS_DIR", str(tmp_path / "cache"))
    code, out, err = run(capsys, "detect", hopper, "--weights", "openface")
    assert code == 2 and out == ""
    one_error_line(err, str(pnet), "20000 bytes", "35088", "truncated")


def test_openface_weights_not_installed(capsys, tmp_path, hopper):
    code, _, err = run(capsys, "detect", hopper, "--weights", "openface")
    assert code == 2
    one_error_line(err, str(mc.dat_path("pnet")), "missing", "mtcnn-lab models --accept-license")
    assert not (tmp_path / "no-models").exists(), "nothing downloaded or created"


def test_auto_weights_with_a_damaged_cache_fall_back_to_the_bundled_ones(capsys, tmp_path, monkeypatch,
                                                                          hopper):
    root = tmp_path / "models"
    _truncate(make_cache(root)["rnet"])
    monkeypatch.setenv(mc.ENV_MODELS_DIR, str(root))
    code, _, err = run(capsys, "detect", hopper, "-q", "--json", "out.json")
    assert code == 0, err
    assert json.loads((tmp_path / "out.json").read_text())["meta"]["weights"] == "zhang2016"


# --------------------------------------------------------------------------------------------
# models


def test_models_without_consent_lists_missing_and_downloads_nothing(capsys, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    code, out, err = run(capsys, "models", "--dir", empty)
    assert code == 1
    lines = out.splitlines()
    assert [line.split()[:2] for line in lines] == [[net, "missing"] for net in NET_NAMES]
    for net, line in zip(NET_NAMES, lines, strict=True):
        assert line.split()[2] == str(mc.dat_path(net, empty))
    one_error_line(err, "--accept-license", "zhang2016")
    assert listing(empty) == set(), "nothing downloaded or created"


def test_models_uses_the_env_root(capsys, tmp_path, monkeypatch):
    root = tmp_path / "env-root"
    monkeypatch.setenv(mc.ENV_MODELS_DIR, str(root))
    code, out, _ = run(capsys, "models", "-q")
    assert code == 1
    assert all(str(root) in line and "missing" in line for line in out.splitlines())
    assert not root.exists()


def test_models_reports_a_valid_and_a_damaged_cache(capsys, tmp_path):
    root = tmp_path / "models"
    paths = make_cache(root)
    code, out, err = run(capsys, "models", "--dir", root)
    assert (code, err) == (0, "")
    assert [line.split()[:2] for line in out.splitlines()] == [[net, "ok"] for net in NET_NAMES]
    _flip_a_byte(paths["rnet"])
    code, out, err = run(capsys, "models", "--dir", root)
    assert code == 1
    assert [line.split()[1] for line in out.splitlines()] == ["ok", "corrupt", "ok"]
    one_error_line(err, "--accept-license")


# --------------------------------------------------------------------------------------------
# the installed console script


def test_console_script(tmp_path, hopper):
    script = Path(sys.executable).with_name("mtcnn-lab")
    if not script.exists():
        script = Path(shutil.which("mtcnn-lab") or "mtcnn-lab")
    env = {k: v for k, v in os.environ.items() if k != mc.ENV_ACCEPT_LICENSE}
    env[mc.ENV_MODELS_DIR] = str(tmp_path / "no-models")

    def call(*argv: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(script), *argv], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=120)

    helped = call("--help")
    assert helped.returncode == 0, helped.stderr
    assert "detect" in helped.stdout and "models" in helped.stdout
    assert call("--version").stdout.strip() == f"mtcnn-lab {mtcnn_lab.__version__}"

    done = call("detect", hopper, "--weights", "zhang2016", "--json", "out.json")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "hopper.jpg: 1 face(s)"
    [entry] = json.loads((tmp_path / "out.json").read_text())["results"]
    assert len(entry["faces"]) == 1 and entry["faces"][0]["confidence"] > 0.99

    failed = call("detect", hopper, "--weights", "openface")
    assert failed.returncode == 2 and failed.stdout == ""
    one_error_line(failed.stderr, "PNet.dat", "mtcnn-lab models --accept-license")


# --------------------------------------------------------------------------------------------
# parity with C++ OpenFace through the command line (needs ../shared)


def _cpp_results() -> dict[str, dict]:
    path = require_shared("reference", "cpp_mtcnn_dev.json")
    return {r["image"]: r for r in json.loads(path.read_text())["results"]}


def _assert_matches_cpp(ours: dict, cpp: dict) -> None:
    assert (ours["width"], ours["height"]) == (cpp["width"], cpp["height"])
    assert len(ours["faces"]) == len(cpp["faces"]) >= 1
    for face, ref in zip(ours["faces"], cpp["faces"], strict=True):
        assert np.abs(np.subtract(face["bbox"], ref["bbox"])).max() <= PX, (face["bbox"], ref["bbox"])
        assert abs(face["confidence"] - ref["confidence"]) <= CONF
        assert np.abs(np.subtract(face["landmarks"], ref["landmarks"])).max() <= PX


def test_cli_matches_cpp_on_sample1(capsys, tmp_path, monkeypatch):
    cpp = _cpp_results()["sample1.jpg"]
    image = require_shared("samples", "sample1.jpg")
    require_shared("OpenFaceModels")
    monkeypatch.setenv(mc.ENV_MODELS_DIR, str(MODELS))
    code, out, err = run(capsys, "detect", image, "--weights", "openface", "--json", "out.json")
    assert code == 0, err
    data = json.loads((tmp_path / "out.json").read_text())
    assert data["meta"]["weights"] == "openface"
    [entry] = data["results"]
    assert entry["image"] == str(image)
    _assert_matches_cpp(entry, cpp)
    assert out.strip() == f"{image}: 1 face(s)"


def test_cli_matches_cpp_on_video_frames(capsys, tmp_path, monkeypatch):
    """changeLighting.wmv: the default 20/50/80 % frames are those extracted for the reference."""
    cpp = _cpp_results()
    video = require_shared("samples", "changeLighting.wmv")
    require_shared("OpenFaceModels")
    monkeypatch.setenv(mc.ENV_MODELS_DIR, str(MODELS))
    code, _, err = run(capsys, "detect", video, "--weights", "openface", "-q", "--json", "out.json")
    assert code == 0, err
    results = json.loads((tmp_path / "out.json").read_text())["results"]
    assert [r["frame"] for r in results] == [17, 44, 70]
    for entry in results:
        _assert_matches_cpp(entry, cpp[f"frames/changeLighting_f{entry['frame']}.png"])


# --------------------------------------------------------------------------------------------
# convert and backends


def test_convert_onnx_writes_models_and_report_and_refuses_to_overwrite(capsys, tmp_path):
    code, out, err = run(capsys, "convert", "--to", "onnx", "--weights", "zhang2016", tmp_path / "m")
    assert code == 0, err
    report = json.loads((tmp_path / "m" / "onnx_report.json").read_text())
    assert set(report["models"]) == {"pnet", "rnet", "onet"}
    for net, entry in report["models"].items():
        assert (tmp_path / "m" / f"{net}.onnx").stat().st_size == entry["bytes"]
        assert entry["opset"] >= 17 and "PRelu" in entry["ops"]
        assert entry["vs_numpy_reference"]["max_abs"] < 1e-4
    before = (tmp_path / "m" / "pnet.onnx").read_bytes()
    code, _, err = run(capsys, "convert", "--to", "onnx", "--weights", "zhang2016", tmp_path / "m")
    assert code == 2 and one_error_line(err, "onnx_report.json already exists", "--overwrite")
    assert (tmp_path / "m" / "pnet.onnx").read_bytes() == before
    report_bytes = (tmp_path / "m" / "onnx_report.json").read_bytes()
    (tmp_path / "m" / "onnx_report.json").rename(tmp_path / "report.json")
    code, _, err = run(capsys, "convert", "--to", "onnx", "--weights", "zhang2016", tmp_path / "m")
    assert code == 2 and one_error_line(err, "pnet.onnx", "--overwrite")  # the models alone are refused too
    (tmp_path / "report.json").rename(tmp_path / "m" / "onnx_report.json")
    for net in ("pnet", "rnet", "onet"):
        (tmp_path / "m" / f"{net}.onnx").unlink()
    code, _, err = run(capsys, "convert", "--to", "onnx", "--weights", "zhang2016", tmp_path / "m")
    assert code == 2 and one_error_line(err, "onnx_report.json already exists")  # a report alone is kept too
    assert (tmp_path / "m" / "onnx_report.json").read_bytes() == report_bytes
    assert not (tmp_path / "m" / "pnet.onnx").exists()
    code, _, err = run(capsys, "convert", "--to", "onnx", "--weights", "zhang2016", "--overwrite", tmp_path / "m")
    assert code == 0, err


def test_convert_coreml_fp16_writes_packages(capsys, tmp_path):
    pytest.importorskip("coremltools")
    code, out, err = run(capsys, "convert", "--to", "coreml", "--fp16", "--weights", "zhang2016", tmp_path)
    assert code == 0, err
    for net in ("pnet", "rnet", "onet"):
        assert (tmp_path / f"{net}_fp16.mlpackage").is_dir()
    assert json.loads((tmp_path / "coreml_report_fp16.json").read_text())["precision"] == "fp16"


def test_backends_lists_every_backend_with_a_reason(capsys):
    code, out, _ = run(capsys, "backends", "--weights", "zhang2016")
    assert code == 0
    lines = out.splitlines()[1:]
    assert any(line.startswith("numpy ") and " yes " in line for line in lines)
    assert sum("<- auto" in line for line in lines) == 1
    assert all(" yes " in line or len(line.split(":", 1)[-1].strip()) > 5 for line in lines)


def test_auto_weights_say_which_set_was_used(capsys, monkeypatch, tmp_path, hopper):
    monkeypatch.setenv("OPENFACE_MODELS_DIR", str(tmp_path / "empty-cache"))
    code, _, err = run(capsys, "detect", hopper)
    assert code == 0
    assert err.startswith("weights: zhang2016 (") and "backend: " in err


def test_the_package_runs_as_python_m_mtcnn_lab_cli():
    import subprocess
    import sys

    run = subprocess.run([sys.executable, "-m", "mtcnn_lab.cli", "--version"], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0 and run.stdout.startswith("mtcnn-lab "), run.stderr[-500:]


def test_detect_every_resumes_only_a_partial_run_made_with_the_same_settings(capsys, tmp_path, video_file):
    from mtcnn_lab.cli.detect import _partial_file
    from mtcnn_lab.video.stream import detect_video

    video = str(video_file)
    partial = _partial_file("r.json", video, "opencv-4.6")
    run_ = detect_video(MTCNN(backend="numpy", weights="zhang2016"), video, jsonl=partial, progress=False)
    [next(run_) for _ in range(3)]
    run_.close()  # a run at min_face 60, stopped after 3 frames
    code, _, err = run(capsys, "detect", video, "--every", "1", "--backend", "numpy", "--weights", "zhang2016",
                       "--min-face", "400", "--json", "r.json")
    assert code == 0, err
    assert "3 frame(s) of an earlier run that this one cannot resume (other settings) discarded" in err
    assert "resuming" not in err
    results = json.loads((tmp_path / "r.json").read_text())
    assert results["meta"]["params"]["min_face"] == 400
    assert [len(e["faces"]) for e in results["results"]] == [0] * N_FRAMES  # none from the min_face 60 run
    assert not partial.exists() and not list(tmp_path.glob(".r.json.*"))

    run_ = detect_video(MTCNN(backend="numpy", weights="zhang2016"), video, jsonl=partial, progress=False)
    [next(run_) for _ in range(2)]
    run_.close()
    code, _, err = run(capsys, "detect", video, "--every", "1", "--backend", "numpy", "--weights", "zhang2016",
                       "--json", "r.json", "--force")
    assert code == 0 and "resuming after 2 frame(s) of an interrupted run" in err and "discarded" not in err
    assert [e["frame"] for e in json.loads((tmp_path / "r.json").read_text())["results"]] == list(range(N_FRAMES))


HOPPER_IN = "hopper.jpg is also one of the inputs; choose another"
FILE_AS_FOLDER = "hopper.jpg is a file, not a folder; choose another"


@pytest.mark.parametrize(("argv", "message"), [
    (["detect", "hopper.jpg", "--force", "--json", "hopper.jpg"], f"{HOPPER_IN} --json path"),
    (["detect", "hopper.jpg", "--json", "r.out", "--csv", "r.out"], "--json and --csv are both r.out"),
    (["detect", "hopper.jpg", "--csv", "hopper.jpg/r.csv"], f"{FILE_AS_FOLDER} --csv path"),
    (["bench", "hopper.jpg", "--out", "hopper.jpg"], f"{HOPPER_IN} --out path"),
    (["corpus", "videos", "--out", "hopper.jpg"], f"{FILE_AS_FOLDER} output folder (--out)"),
])
def test_outputs_that_would_overwrite_an_input_or_cannot_be_written_are_refused_before_any_work(
        capsys, tmp_path, hopper, argv, message):
    (tmp_path / "videos").mkdir()
    write_video(tmp_path / "videos" / "clip.avi", make_frames(2))
    before = (tmp_path / "hopper.jpg").read_bytes()
    code, out, err = run(capsys, *argv)
    assert code == 2 and message in err and err.count("\n") == 1, err
    assert (tmp_path / "hopper.jpg").read_bytes() == before
    assert not (tmp_path / "r.out").exists() and not (tmp_path / "hopper.jpg.json").exists()


@pytest.mark.parametrize(("argv", "message"), [
    (["frames", "clip.avi", "out", "--every", "0"], "--every must be at least 1, not 0; e.g. --every 30"),
    (["corpus", "videos", "--out", "co", "--workers", "0"], "--workers must be at least 1, not 0"),
    (["manifest", "show", "--quick", "0"], "--quick must be at least 1"),
    (["models", "--accept-license", "--dir", "hopper.jpg/models"], f"{FILE_AS_FOLDER} --dir"),
])
def test_cli_messages_name_the_option_not_the_python_argument(capsys, tmp_path, hopper, argv, message):
    (tmp_path / "videos").mkdir()
    write_video(tmp_path / "clip.avi", make_frames(2))
    code, _, err = run(capsys, *argv)
    assert code == 2 and one_error_line(err, message)
