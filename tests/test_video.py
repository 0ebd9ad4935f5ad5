"""Streaming detection over a video: order, equality with per-frame detection, resume, worker processes."""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time

import cv2
import matplotlib.cbook
import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from mtcnn_lab import MTCNN
from mtcnn_lab.backends.numpy import NumpyBackend
from mtcnn_lab.cli import main
from mtcnn_lab.detections import BatchDetector
from mtcnn_lab.errors import BackendUnavailable, InputError, ParameterError, StaleResults
from mtcnn_lab.io.decode.profiles import get_profile
from mtcnn_lab.io.entries import frame_entry, read_done_frames, settings_file
from mtcnn_lab.video import workers as frame_workers
from mtcnn_lab.video.stream import detect_video, run_settings, stream_frames
from mtcnn_lab.video.workers import detect_in_workers

N_FRAMES = 12


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> str:
    face = cv2.imread(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    face = cv2.resize(face, (160, 188))
    path = tmp_path_factory.mktemp("video") / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (320, 240))
    for k in range(N_FRAMES):
        frame = np.full((240, 320, 3), 40, np.uint8)
        frame[20:208, 10 + 8 * k:170 + 8 * k] = face
        writer.write(frame)
    writer.release()
    return str(path)


class CountingDetector:
    """Wraps a detector and counts detect calls."""

    def __init__(self):
        self.inner = MTCNN(backend="numpy", weights="zhang2016")
        self.calls = 0

    def detect(self, image):
        self.calls += 1
        return self.inner.detect(image)


def record_settings(jsonl, detector, video) -> None:
    """The settings file a run of ``detector`` on ``video`` (default decode profile) writes beside ``jsonl``."""
    settings_file(jsonl).write_text(json.dumps(run_settings(detector, video, get_profile(None).name), default=str))


def decoded(path):
    cap, frames = cv2.VideoCapture(path), []
    while True:
        ok, frame = cap.read()
        if not ok:
            return frames
        frames.append(frame)


def test_stream_frames_yields_every_step_in_order(video):
    assert [i for i, _ in stream_frames(video, step=3)] == [0, 3, 6, 9]
    frames = decoded(video)
    assert all(np.array_equal(f, frames[i]) for i, f in stream_frames(video))


def test_detect_video_equals_detecting_each_frame(video):
    det = CountingDetector()
    entries = list(detect_video(det, video, every=2, progress=False))
    frames = decoded(video)
    assert [e["frame"] for e in entries] == list(range(0, N_FRAMES, 2))
    assert all(e["faces"] == det.inner.detect(frames[e["frame"]]).faces() for e in entries)
    assert all(len(e["faces"]) == 1 for e in entries)
    assert det.calls == len(entries)  # a plain Detector: one detect call per frame
    assert not isinstance(det, BatchDetector) and isinstance(det.inner, BatchDetector)


class BatchCountingDetector(CountingDetector):
    """A CountingDetector with detect_batch, recording the size of each batch; ``fail_on``: a frame
    on which both detect and detect_batch raise."""

    def __init__(self, fail_on: np.ndarray | None = None):
        super().__init__()
        self.batches: list[int] = []
        self.fail_on = fail_on

    def detect(self, image):
        if self.fail_on is not None and np.array_equal(image, self.fail_on):
            raise InputError("this frame fails")
        return super().detect(image)

    preferred_batch = 4  # MTCNN's on the host

    def detect_batch(self, images, batch):
        self.batches.append(len(images))
        return [self.detect(image) for image in images]


def test_detect_video_in_the_caller_detects_four_frames_at_a_time(video, tmp_path):
    frames = decoded(video)
    jsonl = tmp_path / "clip.frames.jsonl"
    done_frames = [0, 1, 5, 6, 7]  # a resumed run: these are in the file already
    previous = CountingDetector()
    jsonl.write_text("".join(json.dumps(frame_entry(previous, video, k, frames[k])) + "\n" for k in done_frames))
    det = BatchCountingDetector()
    record_settings(jsonl, det, video)  # as a run of this detector would have
    entries = list(detect_video(det, video, jsonl=jsonl, progress=False))
    assert [e["frame"] for e in entries] == list(range(N_FRAMES))
    assert det.batches == [4, 3]  # frames 2-4 and 8, then 9-11
    assert all(e["faces"] == previous.inner.detect(frames[e["frame"]]).faces() for e in entries)
    assert sorted(read_done_frames(jsonl)) == list(range(N_FRAMES))


def test_a_failing_frame_in_a_batch_raises_after_the_frames_before_it(video, tmp_path):
    frames = decoded(video)
    det = BatchCountingDetector(fail_on=frames[6])  # the second batch: frames 4-7
    jsonl = tmp_path / "clip.frames.jsonl"
    run = detect_video(det, video, jsonl=jsonl, progress=False)
    got = []
    with pytest.raises(InputError, match="this frame fails"):
        for entry in run:
            got.append(entry["frame"])
    assert got == [0, 1, 2, 3, 4, 5]
    assert sorted(read_done_frames(jsonl)) == [0, 1, 2, 3, 4, 5]


def test_an_interrupted_run_resumes_without_redoing_frames(video, tmp_path):
    jsonl = tmp_path / "clip.frames.jsonl"
    det = CountingDetector()
    run = detect_video(det, video, jsonl=jsonl, progress=False)
    first = [next(run) for _ in range(5)]
    run.close()  # interrupted after 5 frames
    with jsonl.open("a") as handle:
        handle.write('{"image": "clip.avi", "frame": 5, "fa')  # torn line from a killed process
    assert sorted(read_done_frames(jsonl)) == [0, 1, 2, 3, 4]

    again = CountingDetector()
    entries = list(detect_video(again, video, jsonl=jsonl, progress=False))
    assert again.calls == N_FRAMES - 5
    assert entries[:5] == first and [e["frame"] for e in entries] == list(range(N_FRAMES))
    assert [json.loads(line)["frame"] for line in jsonl.read_text().splitlines()] == list(range(N_FRAMES))


def test_cli_streams_videos_with_every_and_removes_its_partial_file(video, tmp_path, capsys):
    out = tmp_path / "out.json"
    assert main(["detect", video, "--every", "4", "--backend", "numpy", "--weights", "zhang2016",
                 "--json", str(out), "-q"]) == 0
    results = json.loads(out.read_text())["results"]
    assert [r["frame"] for r in results] == [0, 4, 8]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_cli_keeps_apart_two_videos_of_one_name_in_different_folders(video, tmp_path):
    """Each video resumes from its own partial file: same-named videos must not share one."""
    import shutil

    first, second = tmp_path / "a" / "clip.avi", tmp_path / "b" / "clip.avi"
    for path in (first, second):
        path.parent.mkdir()
    shutil.copy(video, first)
    frames = decoded(video)
    writer = cv2.VideoWriter(str(second), cv2.VideoWriter_fourcc(*"png "), 10, frames[0].shape[1::-1])
    for frame in frames[::-1]:  # the same frames backwards: other faces per index
        writer.write(frame)
    writer.release()
    out = tmp_path / "out.json"
    assert main(["detect", str(first), str(second), "--every", "4", "--backend", "numpy", "--weights",
                 "zhang2016", "--workers", "1", "--json", str(out), "-q"]) == 0
    results = json.loads(out.read_text())["results"]
    assert [r["image"] for r in results] == [str(first)] * 3 + [str(second)] * 3
    numpy = MTCNN(backend="numpy", weights="zhang2016")
    expected = [numpy.detect(frames[::-1][k]).faces() for k in (0, 4, 8)]
    assert [r["faces"] for r in results[3:]] == expected


def test_the_per_frame_file_may_name_a_folder_that_does_not_exist_yet(video, tmp_path):
    jsonl = tmp_path / "new" / "folder" / "clip.frames.jsonl"
    entries = list(detect_video(MTCNN(backend="numpy", weights="zhang2016"), video, every=4, jsonl=jsonl,
                                progress=False))
    assert sorted(read_done_frames(jsonl)) == [e["frame"] for e in entries] == [0, 4, 8]


def test_a_resume_file_holding_only_a_torn_line_is_cleaned_before_appending(tmp_path):
    from mtcnn_lab.io.entries import resume_jsonl

    jsonl = tmp_path / "x.frames.jsonl"
    jsonl.write_text('{"frame": 0, "ima')
    settings = {"detector": "any"}
    settings_file(jsonl).write_text(json.dumps(settings))
    assert resume_jsonl(jsonl, settings) == {} and jsonl.read_text() == ""


# --------------------------------------------------------------------------------------------
# worker processes (workers > 1)
# --------------------------------------------------------------------------------------------


def shm_entries() -> set[str]:
    return set(os.listdir("/dev/shm")) if os.path.isdir("/dev/shm") else set()


@pytest.fixture(scope="module")
def numpy_detector():
    return MTCNN(backend="numpy", weights="zhang2016")


@pytest.fixture
def no_leaks():
    """Fails the test when it leaves child processes or shared-memory segments behind."""
    before = shm_entries()
    yield
    assert multiprocessing.active_children() == []
    assert shm_entries() - before == set()


@pytest.mark.parametrize("backend", ["numpy", "openvino", "onnx", "torch"])
def test_two_workers_give_the_entries_of_one(video, backend, no_leaks):
    """Workers detect with one thread, so a caller at one thread (BLAS included) gets the same entries on
    every CPU: batches of frames follow the limits each backend measured (none is assumed)."""
    try:
        detector = MTCNN(backend=backend, weights="zhang2016", threads=1)
    except BackendUnavailable as err:
        pytest.fail(f"{backend} (a backend of the dev extra) cannot be built here: {err}")
    with threadpool_limits(1):
        one = list(detect_video(detector, video, every=2, progress=False))
        assert list(detect_video(detector, video, every=2, progress=False, workers=2)) == one


def test_two_workers_resume_detecting_only_the_missing_frames(video, numpy_detector, tmp_path, no_leaks):
    with threadpool_limits(1):
        expected = list(detect_video(numpy_detector, video, progress=False))
    jsonl = tmp_path / "clip.frames.jsonl"
    kept = [0, 1, 2, 3, 4, 8]
    marked = [dict(expected[k], faces=[]) for k in kept]  # a recomputed frame would have its face again
    jsonl.write_text("".join(json.dumps(entry) + "\n" for entry in marked))
    record_settings(jsonl, numpy_detector, video)
    entries = list(detect_video(numpy_detector, video, jsonl=jsonl, progress=False, workers=2))
    assert entries == [dict(x, faces=[]) if x["frame"] in kept else x for x in expected]
    assert read_done_frames(jsonl) == {e["frame"]: e for e in entries}


def test_closing_early_stops_the_workers_and_frees_the_shared_memory(video, numpy_detector, no_leaks):
    run = detect_video(numpy_detector, video, progress=False, workers=2)
    assert [next(run)["frame"] for _ in range(2)] == [0, 1]
    run.close()


def test_a_failing_frame_raises_in_the_caller(numpy_detector, no_leaks):
    frames = [(0, np.full((120, 160, 3), 90, np.uint8)), (1, np.full((240, 320, 3), 90, np.uint8)),
              (2, np.zeros((60, 80, 2), np.uint8))]
    run = detect_in_workers(numpy_detector.recipe(threads=1), "x.avi", frames, {}, workers=2)
    assert [e["width"] for e in (next(run), next(run))] == [160, 320]  # the second frame grows its slot
    with pytest.raises(InputError, match="2 channels"):
        next(run)


def test_a_worker_that_cannot_start_raises_in_the_caller(numpy_detector, no_leaks):
    recipe = dict(numpy_detector.recipe(), backend="no-such-backend")
    with pytest.raises(ParameterError, match="unknown backend"):
        list(detect_in_workers(recipe, "x.avi", [(0, np.zeros((60, 80, 3), np.uint8))], {}, workers=2))


def test_a_worker_that_cannot_be_launched_raises_in_the_caller(numpy_detector, monkeypatch, no_leaks):
    class NoProcesses:
        Pipe = staticmethod(multiprocessing.Pipe)

        class Process(multiprocessing.Process):
            def start(self):
                raise OSError("no more processes")

    monkeypatch.setattr(frame_workers, "_context", NoProcesses)
    with pytest.raises(RuntimeError, match="could not be started: OSError"):
        list(detect_in_workers(numpy_detector.recipe(), "x.avi", [(0, np.zeros((60, 80, 3), np.uint8))], {}, 1))


@pytest.mark.parametrize("workers", [0, 1.5, True])
def test_workers_must_be_a_positive_integer(video, numpy_detector, workers):
    with pytest.raises(ParameterError, match="workers"):
        next(detect_video(numpy_detector, video, progress=False, workers=workers))


def test_workers_need_a_detector_with_its_backend_given_by_name(video, numpy_detector):
    by_object = MTCNN(backend=NumpyBackend(numpy_detector.weights), weights=numpy_detector.weights)
    with pytest.raises(ParameterError, match="pass the backend by name"):
        next(detect_video(by_object, video, progress=False, workers=2))
    with pytest.raises(ParameterError, match="MTCNN detector"):
        next(detect_video(CountingDetector(), video, progress=False, workers=2))


def test_cli_runs_videos_on_workers(video, tmp_path, no_leaks):
    out = tmp_path / "out.json"
    args = ["detect", video, "--every", "1", "--backend", "numpy", "--weights", "zhang2016", "-q"]
    assert main([*args, "--workers", "2", "--json", str(out)]) == 0
    with threadpool_limits(1):
        assert main([*args, "--workers", "1", "--json", str(tmp_path / "one.json")]) == 0
    assert json.loads(out.read_text())["results"] == json.loads((tmp_path / "one.json").read_text())["results"]
    assert main([*args, "--workers", "0"]) == 2


def test_the_callers_detector_takes_frames_until_a_worker_has_started(numpy_detector, no_leaks):
    frames = ((k, np.full((120, 160, 3), k % 256, np.uint8)) for k in range(200))
    local_frames = []

    def local(index, frame):
        local_frames.append(index)
        time.sleep(0.05)  # slow enough that the workers start long before the clip ends
        return frame_entry(numpy_detector, "x.avi", index, frame)

    entries = list(detect_in_workers(numpy_detector.recipe(threads=1), "x.avi", frames, {}, 2, local=local))
    assert [e["frame"] for e in entries] == list(range(200))
    assert local_frames == list(range(len(local_frames)))  # the first frames, until a worker was ready
    assert 0 < len(local_frames) < 200


def test_closing_the_stream_early_stops_the_decoder_at_once(video):
    import threading
    import time

    before = threading.active_count()
    stream = stream_frames(video, buffer=N_FRAMES - 1)  # the rest of the clip fills the queue, then _END waits
    next(stream)
    time.sleep(0.3)  # the decoder fills the queue and reaches the end of the short clip
    stream.close()  # joins the decoder thread (for at most 5 s): it must have ended, not be left blocked
    assert threading.active_count() <= before


def test_a_jsonl_of_another_run_or_of_no_run_is_refused_and_left_as_it_is(video, tmp_path):
    jsonl = tmp_path / "clip.frames.jsonl"
    run = detect_video(MTCNN(backend="numpy", weights="zhang2016"), video, jsonl=jsonl, progress=False)
    [next(run) for _ in range(3)]
    run.close()  # an interrupted run at min_face 60
    before = jsonl.read_bytes()
    other = MTCNN(backend="numpy", weights="zhang2016", min_face=400)
    with pytest.raises(StaleResults, match=r"made with params.min_face 60\.0 \(now 400\.0\); delete it") as raised:
        list(detect_video(other, video, jsonl=jsonl, progress=False))
    assert "\n" not in str(raised.value) and jsonl.read_bytes() == before
    with pytest.raises(StaleResults, match=r"made with decode opencv-4.6 \(now upright\)"):
        list(detect_video(MTCNN(backend="numpy", weights="zhang2016"), video, jsonl=jsonl, progress=False,
                          decode="upright"))

    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\nmore notes\n")
    theirs = tmp_path / "theirs.jsonl"
    theirs.write_text('{"frame": 0, "mine": true}\n{"frame": 1, "faces": [], "image": "clip.avi"}\n')
    for path in (notes, theirs):
        with pytest.raises(StaleResults, match=r"is not a per-frame results file of this video \(line 1: "
                                               r"(not a JSON object|no image name or frame index)\); delete that file"):
            read_done_frames(path)
    assert notes.read_text() == "my notes\nmore notes\n"
    with pytest.raises(StaleResults, match="whose settings are not recorded"):  # no settings file beside it
        list(detect_video(CountingDetector(), video, jsonl=notes, progress=False))
    assert notes.read_text() == "my notes\nmore notes\n"
    with pytest.raises(ParameterError, match="is a folder; give the path of a file"):
        list(detect_video(CountingDetector(), video, jsonl=tmp_path, progress=False))
    for every in (0, "2"):  # checked before any file is touched
        with pytest.raises(InputError, match="every must be"):
            list(detect_video(CountingDetector(), video, jsonl=tmp_path / "new.jsonl", every=every))
    assert not (tmp_path / "new.jsonl").exists() and not settings_file(tmp_path / "new.jsonl").exists()


def test_a_resume_through_another_name_of_the_same_video_keeps_this_run_s_name(video, tmp_path):
    link = tmp_path / "link.avi"
    link.symlink_to(video)
    jsonl = tmp_path / "clip.frames.jsonl"
    detector = MTCNN(backend="numpy", weights="zhang2016")
    run = detect_video(detector, video, jsonl=jsonl, progress=False)
    [next(run) for _ in range(3)]
    run.close()
    entries = list(detect_video(detector, str(link), jsonl=jsonl, progress=False))  # same file, same settings
    assert [e["frame"] for e in entries] == list(range(N_FRAMES))
    assert {e["image"] for e in entries} == {str(link)}  # resumed entries renamed as this run names the video
    assert {json.loads(line)["image"] for line in jsonl.read_text().splitlines()} == {str(link)}


def test_detect_video_refuses_a_missing_detector_or_path_in_one_line(video):
    with pytest.raises(ParameterError, match=r"detect_video needs a detector \(e.g. mtcnn_lab.MTCNN\(\)\), not None"):
        list(detect_video(None, video, progress=False))
    with pytest.raises(InputError, match="expected a file path .*got NoneType"):
        list(detect_video(CountingDetector(), None, progress=False))


# --------------------------------------------------------------------------------------------
# small or leaked shared memory, Ctrl-C while the workers start
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("slots_that_fit", [0, 3])
def test_too_little_shared_memory_sends_the_other_frames_through_the_pipes(video, numpy_detector, monkeypatch,
                                                                           caplog, slots_that_fit, no_leaks):
    """Docker's 64 MB /dev/shm: a slot is made only while the free space holds it (the caller would die of a bus
    error writing into a segment the tmpfs cannot back); the other frames go through the pipes, with one warning."""
    frames = decoded(video)
    frame_bytes = frames[0].nbytes
    created = []

    class CountedMemory(frame_workers.SharedMemory):
        def __init__(self, name=None, create=False, size=0):
            super().__init__(name, create, size)
            if create:
                created.append(size)

    monkeypatch.setattr(frame_workers, "SharedMemory", CountedMemory)
    monkeypatch.setattr(frame_workers, "shm_free_bytes",
                        lambda: frame_workers.SHM_RESERVE + (slots_that_fit - len(created)) * frame_bytes)
    with threadpool_limits(1):
        expected = [frame_entry(numpy_detector, "x.avi", k, frame) for k, frame in enumerate(frames)]
    with caplog.at_level("WARNING", logger="mtcnn_lab.video.workers"):
        entries = list(detect_in_workers(numpy_detector.recipe(threads=1), "x.avi", enumerate(frames), {}, 2))
    assert entries == expected
    assert len(created) == slots_that_fit
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "/dev/shm" in warnings[0] and "--shm-size" in warnings[0]


def _long_clip(path, frames: int = 600):
    """A 320x240 MJPG clip of noise (each frame gives the nets work: the run outlasts the workers' start)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (320, 240))
    rng = np.random.default_rng(0)
    for _ in range(frames):
        writer.write(rng.integers(0, 256, (240, 320, 3), np.uint8))
    writer.release()
    return path


def _cli_process(tmp_path, clip, name: str):
    return subprocess.Popen([sys.executable, "-m", "mtcnn_lab.cli", "detect", str(clip), "--every", "1", "--workers",
                             "2", "--json", str(tmp_path / name), "-q", "--backend", "numpy", "--weights", "zhang2016"],
                            cwd=tmp_path, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _wait_for(condition, process, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, f"finished too early: {process.communicate()}"
        assert time.monotonic() < deadline, "never got there"
        time.sleep(0.01)


def test_segments_left_by_a_killed_run_are_removed_by_the_next(tmp_path, video):
    """SIGKILL of the whole process group (a timeout, a cgroup or SLURM kill) leaves the shared memory behind;
    the next run removes the segments whose owner is no longer alive."""
    def segments() -> set[str]:  # multiprocessing's semaphores ("sem.*") are not frame memory
        return {name for name in shm_entries() if not name.startswith("sem.")}

    before = segments()
    process = _cli_process(tmp_path, _long_clip(tmp_path / "long.avi"), "killed.json")
    _wait_for(lambda: segments() - before, process)
    os.killpg(process.pid, signal.SIGKILL)
    process.communicate(timeout=60)
    time.sleep(0.5)  # the rest of the group is gone too
    leftovers = segments() - before
    assert leftovers  # nobody was left to unlink them
    assert main(["detect", video, "--every", "1", "--workers", "2", "--backend", "numpy", "--weights", "zhang2016",
                 "-q", "--json", str(tmp_path / "next.json")]) == 0
    assert leftovers & shm_entries() == set()


def test_ctrl_c_while_the_fork_server_loads_is_one_line(tmp_path):
    """Ctrl-C reaches the whole process group, the workers' fork server included, which may still be importing
    its modules: the command says ``interrupted`` and nothing else."""
    process = _cli_process(tmp_path, _long_clip(tmp_path / "long.avi", 30), "out.json")

    def loading_server() -> bool:  # a process of the run that has loaded numba's compiler but is not the caller
        for entry in os.listdir("/proc"):
            if entry.isdigit() and int(entry) != process.pid:
                with contextlib.suppress(OSError):
                    if os.getsid(int(entry)) == process.pid and "llvmlite" in open(f"/proc/{entry}/maps").read():
                        return True
        return False

    _wait_for(loading_server, process)
    os.killpg(process.pid, signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert (process.returncode, err) == (130, "interrupted\n")
