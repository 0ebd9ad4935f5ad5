"""The cascade on a torch device (``mtcnn_lab.cascade.device``, backends ``torch-cascade*``), proven on ``cpu``.

Each device step is compared bit for bit with the host cascade's own function on random inputs built to hit
the edge cases (ties, rounding halves, windows outside the image, saturated exponentials); the whole
cascade with the host cascade on the same nets (Detections and every stage of the trace); and, with
``../shared``, the 50 dev inputs against the numpy reference's stages (C++ parity itself: tests/test_parity.py).
"""

from __future__ import annotations

import json
import logging
import math

import cv2
import numpy as np
import pytest
import torch

from mtcnn_lab import MTCNN
from mtcnn_lab.backends import select
from mtcnn_lab.backends.select import AUTO_ORDER, CHOICES
from mtcnn_lab.cascade import boxes as host
from mtcnn_lab.cascade.crops import crop_boxes
from mtcnn_lab.cascade.device import boxes as device
from mtcnn_lab.cascade.device import stages
from mtcnn_lab.cascade.device.sampling import crops, pyramid_level
from mtcnn_lab.cascade.device.stages import run_device_cascade
from mtcnn_lab.cascade.proposals import face_probability_map, float_exp
from mtcnn_lab.cascade.resize import resized_input
from mtcnn_lab.cascade.stages import (
    call_groups,
    crop_scores,
    onet_detections,
    rnet_refine,
    run_cascade,
    run_cascade_batch,
)
from mtcnn_lab.cascade.timer import NO_TIMER
from mtcnn_lab.errors import BackendUnavailable, ParameterError
from mtcnn_lab.io.images import read_image
from mtcnn_lab.lab.bench.gpu import gpu_report
from mtcnn_lab.video.stream import detect_video

from .conftest import SAMPLES, SHARED, require_shared
from .test_detector import assert_same

F32 = np.float32


@pytest.fixture(scope="module")
def cascade() -> MTCNN:
    return MTCNN(backend="torch-cascade", weights="zhang2016")


def tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array))


# ---------------------------------------------------------------------------------------------
# Steps, each against the host function
# ---------------------------------------------------------------------------------------------


def tied_boxes(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Float32 boxes on a half-pixel grid (cvRound's halves) clustered so that many overlap, and scores with
    many exact ties (NMS pick order decides)."""
    xy = rng.integers(0, 40, (n, 2)) + rng.integers(0, 2, (n, 2)) * 0.5
    wh = rng.integers(1, 30, (n, 2)) + rng.integers(0, 2, (n, 2)) * 0.5
    scores = rng.integers(0, 6, n) / 8
    return np.concatenate([xy, wh], 1).astype(F32), scores.astype(F32)


@pytest.mark.parametrize("by_min", [False, True])
@pytest.mark.parametrize("budget", [1 << 22, 64])  # 64 pairs: every group in a step of its own
def test_grouped_nms_picks_what_the_host_nms_picks(by_min, budget, monkeypatch):
    monkeypatch.setattr(device, "PAIR_BUDGET", budget)
    rng = np.random.default_rng(7)
    sizes = [0, 1, 37, 5, 0, 60, 2]
    boxes, scores = tied_boxes(rng, sum(sizes))
    groups = np.repeat(np.arange(len(sizes)), sizes)
    for threshold in (0.3, 0.5, 0.7):
        expected = np.concatenate([np.flatnonzero(groups == g)[host.nms(boxes[groups == g], scores[groups == g],
                                                                        threshold, "min" if by_min else "union")]
                                   for g in range(len(sizes))])
        got = device.grouped_nms(tensor(boxes), tensor(scores), tensor(groups), len(sizes), threshold, by_min)
        assert got.tolist() == expected.tolist()
    # integer square boxes (the RNet stage's) too
    ints = np.round(boxes).astype(np.int64)
    got = device.grouped_nms(tensor(ints), tensor(scores), tensor(groups), len(sizes), 0.5, by_min)
    assert got.tolist() == np.concatenate([np.flatnonzero(groups == g)[host.nms(ints[groups == g], scores[groups == g],
                                           0.5, "min" if by_min else "union")] for g in range(len(sizes))]).tolist()


def test_grouped_nms_of_nothing():
    empty = torch.zeros((0, 4))
    assert device.grouped_nms(empty, torch.zeros(0), torch.zeros(0, dtype=torch.int64), 3, 0.5).shape == (0,)


@pytest.mark.parametrize("add1", [False, True])
def test_regression_and_squaring_have_the_host_bits(add1):
    rng = np.random.default_rng(11)
    boxes, _ = tied_boxes(rng, 500)
    boxes[:, :2] -= 20  # negative corners: truncation toward zero
    regression = rng.normal(0, 0.3, (500, 4)).astype(F32)
    regressed = device.apply_regression(tensor(boxes), tensor(regression), add1)
    expected = host.apply_regression(boxes, regression, add1)
    assert regressed.dtype == torch.float32
    np.testing.assert_array_equal(regressed.numpy(), expected)
    squared = device.square_boxes(regressed)
    assert squared.dtype == torch.int64
    np.testing.assert_array_equal(squared.numpy(), host.square_boxes(expected))


def test_exp_is_the_rounded_double_exp_at_the_inputs_nearest_a_rounding_boundary():
    """The two float32 inputs whose exp lies within 2 double ulps of a float32 midpoint (a full scan): host and
    device agree with the correctly rounded value (Python's math.exp) there too, and on a random sample."""
    hard = np.array([-0.007352583575993776, -14.567090034484863], F32)
    x = np.concatenate([hard, np.random.default_rng(4).uniform(-100, 80, 20000).astype(F32)])
    expected = np.array([F32(math.exp(float(v))) for v in x], F32)
    np.testing.assert_array_equal(float_exp(x), expected)
    np.testing.assert_array_equal(device.float_exp(tensor(x)).numpy(), expected)


def test_probabilities_have_the_host_bits():
    rng = np.random.default_rng(5)
    heat = (rng.normal(0, 6, (2, 6, 30, 40)) * rng.choice([1, 10], (2, 6, 30, 40))).astype(F32)  # saturating too
    got = device.face_probability(tensor(heat)).numpy()
    for frame in range(2):
        np.testing.assert_array_equal(got[frame], face_probability_map(heat[frame, :2]))
    outputs = heat.reshape(-1, 6)
    np.testing.assert_array_equal(device.crop_scores(tensor(outputs)).numpy(), crop_scores(outputs))


def test_crops_and_pyramid_levels_have_the_host_bits():
    rng = np.random.default_rng(2)
    frames = rng.integers(0, 256, (2, 83, 121, 3), dtype=np.uint8)
    edge_cases = [[10, 12, 30, 30], [-15, -9, 40, 40], [100, 70, 50, 50], [1, 1, 0, 0], [-80, 5, 20, 20],
                  [0, 0, 120, 120], [60, 40, 7, 7]]
    every_side = [[int(rng.integers(-20, 100)), int(rng.integers(-20, 70)), side, side] for side in range(1, 301)]
    boxes = np.array(edge_cases + every_side, np.int64)  # every window side up to 301: every tap scale
    frame_of = rng.integers(0, 2, len(boxes))
    for size in (24, 48):
        got = crops(tensor(frames), tensor(frame_of), tensor(boxes), size).numpy()
        for k in range(len(boxes)):
            np.testing.assert_array_equal(got[k], crop_boxes(frames[frame_of[k]], boxes[k:k + 1], size)[0])
    big = rng.integers(0, 256, (1, 700, 1000, 3), dtype=np.uint8)
    for scale in 0.2 * 0.709 ** np.arange(12):  # the pyramid of a 1000x700 frame
        size = (int(np.ceil(700 * scale)), int(np.ceil(1000 * scale)))
        np.testing.assert_array_equal(pyramid_level(tensor(big), size).numpy()[0], resized_input(big[0], size))
    for size in ((17, 25), (83, 121), (41, 60)):
        levels = pyramid_level(tensor(frames), size).numpy()
        for k in range(2):
            np.testing.assert_array_equal(levels[k], resized_input(frames[k], size))


def random_candidates(rng: np.random.Generator, per_frame: list[int], n_out: int):
    """Square int64 boxes that overlap a lot, per frame, and net outputs whose scores straddle the threshold."""
    boxes = np.concatenate([
        np.column_stack([rng.integers(0, 60, (n, 2)), np.repeat(rng.integers(20, 40, (n, 1)), 2, 1)])
        for n in per_frame]).astype(np.int64)
    outputs = rng.normal(0, 0.2, (len(boxes), n_out)).astype(F32)
    outputs[:, 1] = outputs[:, 0] + rng.uniform(0, 3, len(boxes)).astype(F32)  # probabilities 0.5 .. 0.95
    return boxes, np.repeat(np.arange(len(per_frame)), per_frame), outputs


def test_rnet_and_onet_steps_have_the_host_bits(cascade):
    """Steps 4-6 on many overlapping candidates of several frames: ONet's NMS "min" decides here."""
    rng = np.random.default_rng(9)
    per_frame = [12, 0, 30, 7]
    params, nets, n = cascade.params, cascade.backend.device_nets, len(per_frame)
    boxes, frame, outputs = random_candidates(rng, per_frame, 6)
    traces = [{"pnet_scales": []} for _ in range(n)]
    refined = stages._rnet_refine(stages.Candidates(tensor(boxes), tensor(frame)), tensor(outputs), nets, n, params,
                                  traces, NO_TIMER)
    for i in range(n):
        trace = {"pnet_scales": []}
        expected = rnet_refine(boxes[frame == i], outputs[frame == i], params, trace)
        np.testing.assert_array_equal(refined.boxes.numpy()[refined.frame.numpy() == i], expected)
        assert traces[i] == trace
    boxes, frame, outputs = random_candidates(rng, per_frame, 16)
    found = stages._onet_detections(stages.Candidates(tensor(boxes), tensor(frame)), tensor(outputs), n, params,
                                    traces)
    for i in range(n):
        assert_same(found[i], onet_detections(boxes[frame == i], outputs[frame == i], params))
    assert sum(len(f) for f in found) > 4


# ---------------------------------------------------------------------------------------------
# The whole cascade
# ---------------------------------------------------------------------------------------------


def test_torch_cascade_is_listed_and_the_cuda_one_leads_auto_on_a_gpu():
    for name in ("torch-cascade", "torch-cascade-cuda", "torch-cascade-mps"):
        assert name in CHOICES
    assert AUTO_ORDER.index("torch-cascade-cuda") < AUTO_ORDER.index("openvino")


def test_the_whole_cascade_gives_the_host_cascade_bits_on_the_same_nets(cascade, hopper):
    """Same nets (torch on the CPU): the device cascade's Detections and traces equal the host cascade's."""
    images = [hopper, np.ascontiguousarray(hopper[:, ::-1]), np.roll(hopper, 40, axis=1), np.zeros_like(hopper),
              np.ascontiguousarray(hopper[100:, 50:450])]
    for image in images:
        ours, theirs = cascade.detect(image, trace=True), run_cascade(image, cascade.backend, trace=True)
        assert_same(ours, theirs)
        assert ours.trace == theirs.trace
    assert len(cascade.detect(hopper)) == 1


def test_frames_of_several_sizes_in_one_call(cascade, hopper):
    small, tiny = np.ascontiguousarray(hopper[::2, ::2]), np.zeros((30, 30, 3), np.uint8)
    images = [hopper, small, hopper[:, ::-1].copy(), tiny, small]
    together = run_device_cascade(images, cascade.backend.device_nets, trace=True)
    for image, found in zip(images, together, strict=True):
        alone = cascade.detect(image, trace=True)
        assert_same(found, alone)
        assert found.trace == alone.trace
    assert together[3].trace == {"pnet_scales": [], "rnet_input_boxes": [], "rnet_scores": [], "n_rnet_pass": 0,
                                 "n_after_rnet_nms07": 0, "onet_input_boxes": [], "onet_scores": []}
    for one, many in zip([cascade.detect(i) for i in images], cascade.detect_batch(images), strict=True):
        assert_same(many, one)


def test_detect_batch_and_video_give_the_device_its_preferred_batch(cascade, hopper, monkeypatch, tmp_path):
    assert cascade.preferred_batch == 8  # on the CPU
    calls = []
    real = cascade._cascade
    monkeypatch.setattr(cascade, "_cascade", lambda images, *a: calls.append(len(images)) or real(images, *a))
    cascade.detect_batch([hopper] * 11)
    assert calls == [8, 3]
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"png "), 10, hopper.shape[1::-1])
    for shift in range(10):
        writer.write(np.roll(hopper, 8 * shift, axis=1))
    writer.release()
    calls.clear()
    entries = list(detect_video(cascade, path, progress=False))
    assert calls == [8, 2] and [len(e["faces"]) for e in entries] == [1] * 10


class RowByRow:
    """DeviceNets around a backend's that run every row alone (batch-invariant by construction) while claiming
    batch limits above 1, recording the rows of each call: the device cascade's call groups, exercised."""

    def __init__(self, nets, limits: dict[str, int]):
        self.inner, self.device, self.batch_limits, self.preferred_batch = nets, nets.device, limits, 8
        self.calls: list[tuple[str, int]] = []

    def run_tensor(self, net, batch):
        self.calls.append((net, len(batch)))
        return torch.cat([self.inner.run_tensor(net, row[None]) for row in batch])


def test_frames_share_network_calls_up_to_the_batch_limits(cascade, hopper):
    images = [hopper, np.roll(hopper, 40, axis=1), np.zeros_like(hopper), hopper[:, ::-1].copy(), hopper]
    nets = RowByRow(cascade.backend.device_nets, {"pnet": 2, "rnet": 110, "onet": 2})
    together = run_device_cascade(images, nets, trace=True)
    one_per_call = RowByRow(cascade.backend.device_nets, {"pnet": 1, "rnet": 1, "onet": 1})
    for image, found in zip(images, together, strict=True):
        alone = run_device_cascade([image], one_per_call, trace=True)[0]
        assert_same(found, alone)
        assert found.trace == alone.trace
    rows = {net: [n for name, n in nets.calls if name == net] for net in ("pnet", "rnet", "onet")}
    assert rows["pnet"] == [2, 2, 1] * len(together[0].trace["pnet_scales"])  # 5 frames per level
    for net, limit in (("rnet", 110), ("onet", 2)):  # whole frames per call, joined up to the limit
        per_frame = [len(f.trace[f"{net}_input_boxes"]) for f in together]
        assert rows[net] == [sum(per_frame[i] for i in g) for g in call_groups(per_frame, limit)]
    assert len(rows["rnet"]) < sum(n > 0 for n in [len(f.trace["rnet_input_boxes"]) for f in together])


def test_a_device_cascade_that_differs_from_the_host_is_refused(monkeypatch, bundled_weights, caplog):
    def shifted(boxes, regression, add1):
        return apply_regression(boxes, regression, add1) + 0.25

    apply_regression = stages.apply_regression
    monkeypatch.setattr(stages, "apply_regression", shifted)
    with pytest.raises(BackendUnavailable, match="torch-cascade cannot be used here") as info:
        MTCNN(backend="torch-cascade", weights=bundled_weights)
    assert "\n" not in str(info.value)
    monkeypatch.setattr(select, "AUTO_ORDER", ("torch-cascade", "numpy"))
    with caplog.at_level(logging.WARNING, logger="mtcnn_lab.detector"):
        detector = MTCNN(weights=bundled_weights)
    assert detector.backend.name == "numpy" and "torch-cascade skipped" in caplog.text
    assert detector.recipe()["backend"] == "numpy"


def test_the_device_cascade_runs_in_fp32_only(bundled_weights):
    from mtcnn_lab.backends.torch import TorchBackend

    with pytest.raises(ParameterError, match="FP32 only"):
        TorchBackend(bundled_weights, "cpu", precision="fp16", whole_cascade=True)


def test_dev_inputs_stages_equal_the_host_cascade_on_the_same_nets(cascade):
    """The 50 dev inputs, in one detect_batch per size: every stage equal to the host cascade's on the same nets,
    and every count and box of every stage equal to the numpy reference's (whose scores differ in the last bits)."""
    entries = json.loads(require_shared("reference", "cpp_mtcnn_dev.json").read_text())["results"]
    images = [read_image(SAMPLES / e["image"]) for e in entries]
    ours = run_device_cascade(images, cascade.backend.device_nets, trace=True)
    numpy_detector = MTCNN(backend="numpy", weights="zhang2016")
    for image, found in zip(images, ours, strict=True):
        same_nets = run_cascade_batch([image], cascade.backend, trace=True)[0]
        assert_same(found, same_nets)
        assert found.trace == same_nets.trace
        reference = numpy_detector.detect(image, trace=True).trace
        for key in ("n_after_cross_scale_nms07", "n_rnet_pass", "n_after_rnet_nms07", "rnet_input_boxes",
                    "onet_input_boxes"):
            assert found.trace[key] == reference[key], key
        np.testing.assert_allclose(found.trace["rnet_scores"], reference["rnet_scores"], atol=5e-6)


def test_the_gpu_benchmark_runs_on_the_cpu_as_a_smoke_test():
    require_shared("reference", "cpp_mtcnn_dev.json")
    report = gpu_report("torch-cascade", SHARED, batch_sizes=(1, 3), seconds=0.0, limit=2, progress=lambda line: None)
    assert report["backend"] == "torch-cascade" and report["dev_parity"]["inputs"] == 2
    assert report["dev_parity"]["same_count"] == 2 and report["dev_parity"]["max_bbox_px"] < 0.01
    for name, check in report["same_bits"].items():
        assert check["detect_batch_equals_detect"] == check["device_equals_host_cascade"] == 2, name
    for name, run in report["throughput"].items():
        assert [row["batch"] for row in run["rows"]] == [1, 3], name
        assert all(row["fps"] > 0 and row["face_count_mismatches"] == 0 for row in run["rows"])
        assert run["distinct_frames"] == 2


def test_the_gpu_benchmark_names_a_missing_backend_in_one_line(tmp_path):
    require_shared("reference", "cpp_mtcnn_dev.json")
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu.py"
    done = subprocess.run([sys.executable, str(script), "--backend", "no-such-backend", "--shared", str(SHARED),
                           "--out", str(tmp_path / "gpu.json")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1 and "unknown backend 'no-such-backend'" in done.stderr
    assert not (tmp_path / "gpu.json").exists()
