"""Real faults, not simulated ones: Ctrl-C (SIGINT to the whole process group, as a terminal sends it) on
real ``mtcnn-lab detect`` and ``mtcnn-lab corpus`` processes, permission errors as an unprivileged user
(the test drops to ``nobody`` in a forked child when it runs as root), and a full disk (RLIMIT_FSIZE)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import pickle
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from mtcnn_lab.errors import InputError, WeightsError

NOBODY = 65534
COMMON = ["--backend", "numpy", "--weights", "zhang2016"]


def _clip(path: Path, frames: int, seed: int = 0) -> Path:
    """A 320x240 MJPG clip with a face (matplotlib's Grace Hopper) drifting across."""
    from matplotlib import cbook

    face = cv2.resize(cv2.imread(str(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))), (150, 175))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (320, 240))
    for k in range(frames):
        canvas = np.full((240, 320, 3), 90 + seed, np.uint8)
        x = 10 + (k * 3) % 150
        canvas[30:205, x:x + 150] = face
        writer.write(canvas)
    writer.release()
    return path


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "mtcnn_lab.cli", *args]


def _session_processes(sid: int) -> list[int]:
    """Processes still alive in session ``sid`` (the interrupted command's own session)."""
    alive = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if os.getsid(int(entry.name)) == sid:
                    stat = (entry / "stat").read_text()
                    if stat.rsplit(")", 1)[1].split()[0] != "Z":  # zombies are already dead
                        alive.append(int(entry.name))
    return alive


def _interrupt_when(process: subprocess.Popen, ready, timeout: float = 120.0) -> None:
    """Send SIGINT to ``process``'s whole process group once ``ready()`` holds (a hang guard, not a timing claim)."""
    deadline = time.monotonic() + timeout
    while not ready():
        assert process.poll() is None, f"finished before it could be interrupted: {process.communicate()}"
        assert time.monotonic() < deadline, "the command never reached the point to interrupt"
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGINT)


def _no_orphans(sid: int) -> None:
    deadline = time.monotonic() + 30
    while _session_processes(sid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _session_processes(sid) == [], "processes of the interrupted command are still running"


def test_ctrl_c_on_detect_every_keeps_the_frames_and_resumes(tmp_path):
    clip = _clip(tmp_path / "clip.avi", 240)
    out = tmp_path / "out.json"
    command = _cli("detect", str(clip), "--every", "1", "--workers", "2", "--json", str(out), "-q", *COMMON)
    process = subprocess.Popen(command, cwd=tmp_path, start_new_session=True, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)

    def partial_lines() -> int:
        return sum(len(p.read_text().splitlines()) for p in tmp_path.glob(".out.json.*.frames.jsonl"))

    _interrupt_when(process, lambda: partial_lines() >= 10)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert err.strip().splitlines()[-1] == "interrupted"
    _no_orphans(process.pid)
    assert not out.exists()
    kept = partial_lines()
    assert 10 <= kept < 240  # the frames done so far are kept for the rerun

    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    results = json.loads(out.read_text())["results"]
    assert [e["frame"] for e in results] == list(range(240))
    assert not list(tmp_path.glob(".out.json.*"))  # the partial file is gone once the JSON holds everything
    fresh = tmp_path / "fresh.json"
    subprocess.run(_cli("detect", str(clip), "--every", "1", "--workers", "1", "--threads", "1", "--json", str(fresh),
                        "-q", *COMMON), cwd=tmp_path, check=True, timeout=600)
    assert json.loads(fresh.read_text())["results"] == results  # resumed = one uninterrupted run


def test_ctrl_c_on_corpus_leaves_only_complete_files_and_resumes(tmp_path):
    pytest.importorskip("distributed")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for k in range(3):
        _clip(corpus / f"v{k}.avi", 150, seed=k)
    out = tmp_path / "out"
    command = _cli("corpus", str(corpus), "--out", str(out), "--workers", "1", "-q", *COMMON)
    process = subprocess.Popen(command, cwd=tmp_path, start_new_session=True, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    _interrupt_when(process, lambda: any(p.stat().st_size > 0 for p in out.glob(".*.frames.jsonl")))
    _, err = process.communicate(timeout=180)
    assert process.returncode == 130, err
    _no_orphans(process.pid)
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")], "partial files left behind"
    for result in out.glob("*.avi.json"):
        assert len(json.loads(result.read_text())["results"]) == 150  # only complete result files

    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in out.glob("*.avi.json")) == ["v0.avi.json", "v1.avi.json", "v2.avi.json"]


# ---------------------------------------------------------------------------------------------
# permissions, as a user the permission bits apply to
# ---------------------------------------------------------------------------------------------


def _unprivileged(fn, *args):
    """``fn(*args)`` as an ordinary user: directly when not root, else in a forked child that has dropped to
    ``nobody`` (everything ``fn`` needs must be imported before); its exception is raised here."""
    if os.geteuid() != 0:
        return fn(*args)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: drop privileges, run, send the outcome back
        try:
            os.close(read)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            try:
                outcome = ("value", fn(*args))
            except BaseException as err:  # noqa: BLE001 - handed to the parent, which raises it
                outcome = ("error", err)
            with os.fdopen(write, "wb") as handle:
                handle.write(pickle.dumps(outcome))
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as handle:
        data = handle.read()
    os.waitpid(pid, 0)
    kind, value = pickle.loads(data)
    if kind == "error":
        raise value
    return value


@pytest.fixture
def open_dir():
    """A folder every user can enter (pytest's own temporary folders are root's alone when run as root)."""
    path = Path(tempfile.mkdtemp(prefix="mtcnn-lab-perm-"))
    path.chmod(0o777)
    yield path
    subprocess.run(["chmod", "-R", "u+rwx", str(path)], check=False)
    subprocess.run(["rm", "-rf", str(path)], check=False)


def test_unreadable_image_is_one_line_as_an_ordinary_user(open_dir, hopper):
    from mtcnn_lab.cli import main

    image = open_dir / "face.jpg"
    cv2.imwrite(str(image), hopper)
    main(["detect", str(image), "-q", *COMMON])  # loads everything the child needs while still root
    image.chmod(0)

    def detect_as_user():
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = main(["detect", str(image), *COMMON])
        return code, err.getvalue()

    code, err = _unprivileged(detect_as_user)
    assert code == 1
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "face.jpg" in lines[0] and "permission denied" in lines[0]


def test_unreadable_dat_file_names_the_path_as_an_ordinary_user(open_dir):
    from mtcnn_lab.weights.dat import read_dat
    from tests.test_weights import valid_bytes

    path = open_dir / "PNet.dat"
    path.write_bytes(valid_bytes("pnet"))
    read_dat(path, "pnet")
    path.chmod(0)
    with pytest.raises(WeightsError) as info:
        _unprivileged(read_dat, path, "pnet")
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_read_only_model_cache_as_an_ordinary_user(open_dir):
    from mtcnn_lab.weights.models_cache import install_openface_models

    version_dir = open_dir / "cache" / "2.2.0"
    version_dir.mkdir(parents=True)
    version_dir.chmod(0o555)
    (open_dir / "cache").chmod(0o555)
    with pytest.raises(WeightsError, match="cannot write the OpenFace model cache"):
        _unprivileged(lambda: install_openface_models(root=open_dir / "cache", accept_license=True,
                                                      base_url="http://127.0.0.1:9/", progress=False))


def test_unreadable_video_as_an_ordinary_user(open_dir):
    from mtcnn_lab.io.videos import iter_video_frames

    clip = _clip(open_dir / "clip.avi", 3)
    list(iter_video_frames(clip))
    clip.chmod(0)
    with pytest.raises(InputError, match="permission denied"):
        _unprivileged(lambda: list(iter_video_frames(clip)))


# ---------------------------------------------------------------------------------------------
# a full disk
# ---------------------------------------------------------------------------------------------


def _small_file_limit():
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (2000, 2000))


def test_a_full_disk_is_one_line_and_leaves_no_partial_file(tmp_path, hopper):
    images = []
    for k in range(12):  # results larger than the 2000-byte limit
        images.append(str(tmp_path / f"face{k}.png"))
        cv2.imwrite(images[-1], hopper)
    done = subprocess.run(_cli("detect", *images, "--json", "out.json", "-q", *COMMON), cwd=tmp_path,
                          capture_output=True, text=True, preexec_fn=_small_file_limit, timeout=300)
    assert done.returncode == 2, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: cannot write out.json (File too large)") and "--json" in last
    assert not [p.name for p in tmp_path.iterdir() if "out.json" in p.name]  # neither the file nor its temp
