"""Streaming detection over a video: order, equality with per-frame detection, resume."""

from __future__ import annotations

import json

import cv2
import matplotlib.cbook
import numpy as np
import pytest

from mtcnn_lab import MTCNN
from mtcnn_lab.cli import main
from mtcnn_lab.video import detect_video, read_done_frames, stream_frames

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
