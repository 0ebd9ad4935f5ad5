"""The MTCNN cascade exactly as OpenFace's ``FaceDetectorMTCNN::DetectFaces`` runs it.

pyramid -> PNet proposals -> per-scale NMS 0.5 -> cross-scale NMS 0.7 -> regression -> squaring
-> RNet (score >= 0.7) -> NMS 0.7 -> regression -> squaring -> ONet (score >= 0.7) -> regression
(+1) -> NMS 0.7 "min" -> OpenFace's final correction. See ``docs/openface_mtcnn.md``
§5-§9 (``FaceDetectorMTCNN.cpp``, ``DetectFaces``).
The cascade is runtime-agnostic: the networks are evaluated by a backend.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Executor

import numpy as np

from mtcnn_lab.backends.base import Backend
from mtcnn_lab.cascade.boxes import apply_regression, nms, openface_correction, square_boxes
from mtcnn_lab.cascade.crops import crop_boxes
from mtcnn_lab.cascade.proposals import face_probability_map, float_exp, pnet_proposals
from mtcnn_lab.cascade.pyramid import pyramid_levels
from mtcnn_lab.cascade.timer import NO_TIMER, StageTimer
from mtcnn_lab.detections import Detections
from mtcnn_lab.errors import ParameterError
from mtcnn_lab.params import CascadeParams
from mtcnn_lab.weights.netspec import CROP_SIZES

__all__ = [
    "run_cascade", "run_cascade_batch", "call_groups", "crop_scores", "stage_pnet", "stage_pnet_batch",
    "run_on_crops", "rnet_refine", "onet_detections", "final_detections",
]

F32 = np.float32


def crop_scores(outputs: np.ndarray) -> np.ndarray:
    """RNet/ONet face probability as OpenFace stores it: float ``exp`` (:func:`float_exp`), double ``1 / (1 + e)``."""
    e = float_exp((outputs[:, 0] - outputs[:, 1]).astype(F32)).astype(np.float64)
    return (1.0 / (1.0 + e)).astype(F32)


def _joined(arrays: list[np.ndarray]) -> np.ndarray:
    """The arrays concatenated along axis 0; a single array is returned as is (no copy)."""
    return arrays[0] if len(arrays) == 1 else np.concatenate(arrays)


def call_groups(rows: Sequence[int], limit: int) -> list[list[int]]:
    """The images (indices) that share each network call, given each image's number of input rows: runs
    of consecutive images whose rows add up to at most ``limit``; an image with more rows than that is
    alone, one with none in no call. ``limit`` is the backend's measured batch limit for the net
    (:mod:`mtcnn_lab.backends.batch_invariance`), so each image's outputs are the bits of a call on its
    rows alone: what :func:`run_cascade` computes."""
    groups: list[list[int]] = []
    total = limit + 1  # rows of the last group; more than limit: start a new one
    for index, n in enumerate(rows):
        if n == 0:
            continue
        if total + n > limit:
            groups.append([])
            total = 0
        groups[-1].append(index)
        total += n
    return groups


def stage_pnet_batch(images: list[np.ndarray], backend: Backend, params: CascadeParams,
                     traces: list[dict | None], timer: StageTimer = NO_TIMER,
                     pool: Executor | None = None) -> list[np.ndarray]:
    """Stage 1 for images of one size: per image, square integer boxes (N, 4) ``[x, y, s, s]`` proposed by
    PNet over the pyramid. Each pyramid level of the images goes through PNet in as few calls as the
    backend's PNet batch limit allows."""
    if not images:
        return []
    with timer("pyramid"):
        pyramids = [pyramid_levels(image, params.min_face, params.factor, pool) for image in images]
    found: list[tuple[list, list, list]] = [([], [], []) for _ in images]
    groups = call_groups([1] * len(images), backend.batch_limits["pnet"])
    for k, (scale, _) in enumerate(pyramids[0]):
        heats: list[np.ndarray] = []
        for group in groups:
            with timer("pnet"):
                heats += list(backend.run_pnet(_joined([pyramids[i][k][1][None] for i in group])))
        for heat, (boxes, scores, regs), pyramid, trace in zip(heats, found, pyramids, traces, strict=True):
            with timer("proposals_nms"):
                prob = face_probability_map(heat[:2])
                b, s, r = pnet_proposals(prob, heat[2:6], scale, params.thresholds[0])
                keep = nms(b, s, params.nms_per_scale, "union")
            boxes.append(b[keep])
            scores.append(s[keep])
            regs.append(r[keep])
            if trace is not None:
                level = pyramid[k][1]
                trace["pnet_scales"].append({
                    "scale": scale, "pyr_wh": [level.shape[2], level.shape[1]],
                    "heatmap_wh": [prob.shape[1], prob.shape[0]], "n_above_t1": len(s),
                    "n_after_nms05": len(keep)})
    return [_across_scales(*lists, params, trace, timer) for lists, trace in zip(found, traces, strict=True)]


def _across_scales(boxes: list, scores: list, regs: list, params: CascadeParams, trace: dict | None,
                   timer: StageTimer) -> np.ndarray:
    """One image's proposals of every level: NMS across scales, regression, squaring."""
    if not boxes:
        return np.zeros((0, 4), np.int64)
    with timer("proposals_nms"):
        all_boxes, all_scores, all_regs = np.concatenate(boxes), np.concatenate(scores), np.concatenate(regs)
        keep = nms(all_boxes, all_scores, params.nms_pyramid, "union")
        squared = square_boxes(apply_regression(all_boxes[keep], all_regs[keep], add1=False))
    if trace is not None:
        trace["n_after_cross_scale_nms07"] = len(keep)
    return squared


def stage_pnet(image: np.ndarray, backend: Backend, params: CascadeParams, trace: dict | None = None,
               timer: StageTimer = NO_TIMER, pool: Executor | None = None) -> np.ndarray:
    """Stage 1: square integer boxes (N, 4) ``[x, y, s, s]`` proposed by PNet over the pyramid."""
    return stage_pnet_batch([image], backend, params, [trace], timer, pool)[0]


def run_on_crops(images: list[np.ndarray], boxes: list[np.ndarray], run: Callable[[np.ndarray], np.ndarray],
                 size: int, n_out: int, limit: int,
                 timer: StageTimer, stage: str, pool: Executor | None = None) -> list[np.ndarray]:
    """Cut ``size`` x ``size`` crops of each image's square ``boxes`` and run a net on them, images joined
    into one call as long as their crops add up to at most ``limit`` (:func:`call_groups`): per image,
    (N, n_out) outputs."""
    rows = [len(b) for b in boxes]
    outputs = [np.zeros((0, n_out), F32) for _ in boxes]
    if not sum(rows):
        return outputs
    with timer("crops"):
        crops = [crop_boxes(image, b, size, pool) for image, b in zip(images, boxes, strict=True)]
    for group in call_groups(rows, limit):
        with timer(stage):
            joined = run(_joined([crops[i] for i in group]))
        for i, part in zip(group, np.split(joined, np.cumsum([rows[i] for i in group])[:-1]), strict=True):
            outputs[i] = part
    return outputs


def rnet_refine(boxes: np.ndarray, outputs: np.ndarray, params: CascadeParams, trace: dict | None = None,
                timer: StageTimer = NO_TIMER) -> np.ndarray:
    """Stage 2 after RNet: scores, threshold, NMS, regression and squaring of one image's boxes (M, 4)."""
    with timer("proposals_nms"):
        scores = crop_scores(outputs)
        passed = scores >= F32(params.thresholds[1])
        keep = nms(boxes[passed], scores[passed], params.nms_rnet, "union")
    if trace is not None:
        trace.update(rnet_input_boxes=boxes.tolist(), rnet_scores=scores.tolist(),
                     n_rnet_pass=int(passed.sum()), n_after_rnet_nms07=len(keep))
    kept_boxes, kept_regs = boxes[passed][keep], outputs[passed][keep, 2:6]
    return square_boxes(apply_regression(kept_boxes, kept_regs, add1=False))


def onet_detections(boxes: np.ndarray, outputs: np.ndarray, params: CascadeParams,
                    trace: dict | None = None) -> Detections:
    """Stage 3 after ONet: scores, regression (+1), NMS "min", final correction and landmarks of one image."""
    scores = crop_scores(outputs)
    if trace is not None:
        trace.update(onet_input_boxes=boxes.tolist(), onet_scores=scores.tolist())
    passed = scores >= F32(params.thresholds[2])
    in_boxes, outs, scores = boxes[passed], outputs[passed].astype(F32), scores[passed]
    regressed = apply_regression(in_boxes, outs[:, 2:6], add1=True)
    keep = nms(regressed, scores, params.nms_onet, "min")
    return final_detections(in_boxes[keep], outs[keep], regressed[keep], scores[keep], params, trace)


def final_detections(in_boxes: np.ndarray, outputs: np.ndarray, regressed: np.ndarray, scores: np.ndarray,
                     params: CascadeParams, trace: dict | None = None) -> Detections:
    """The faces ONet's NMS kept, in pick order: OpenFace's final correction of the ``regressed`` float32 boxes
    (N, 4) and the landmarks decoded from ONet's ``outputs`` (N, 16) on the square int64 ``in_boxes`` (N, 4)."""
    side = in_boxes[:, 2:3].astype(np.float64) + 1.0
    landmarks = np.stack([side * outputs[:, 6:11] + in_boxes[:, 0:1] - 1,
                          side * outputs[:, 11:16] + in_boxes[:, 1:2] - 1], axis=2)
    return Detections(
        boxes=openface_correction(regressed, params.correction),
        confidences=scores,
        landmarks=landmarks.reshape(-1, 5, 2),
        boxes_pre_correction=regressed,
        onet_input_boxes=in_boxes,
        onet_outputs=outputs,
        trace=trace,
    )


def run_cascade_batch(images: Sequence[np.ndarray], backend: Backend, params: CascadeParams | None = None,
                      trace: bool = False, timer: StageTimer = NO_TIMER,
                      pool: Executor | None = None) -> list[Detections]:
    """:func:`run_cascade` for BGR uint8 images of one size, with the same results bit for bit: each net
    takes several images in one call (fewer, larger calls) up to the batch size the backend measured
    to leave each input's outputs unchanged (``Backend.batch_limits``), and one image per call beyond
    that, so the results never depend on whether this CPU's kernels are batch-invariant."""
    params = params or CascadeParams()
    images = list(images)
    if len({image.shape for image in images}) > 1:
        raise ParameterError(f"run_cascade_batch needs images of one size, got {sorted({i.shape for i in images})}")
    if not images:
        return []
    traces: list[dict | None] = [{"pnet_scales": []} if trace else None for _ in images]
    boxes = stage_pnet_batch(images, backend, params, traces, timer, pool)
    limits = backend.batch_limits
    outputs = run_on_crops(images, boxes, backend.run_rnet, CROP_SIZES["rnet"], 6, limits["rnet"], timer, "rnet", pool)
    boxes = [rnet_refine(b, o, params, t, timer) for b, o, t in zip(boxes, outputs, traces, strict=True)]
    outputs = run_on_crops(images, boxes, backend.run_onet, CROP_SIZES["onet"], 16, limits["onet"], timer, "onet", pool)
    return [onet_detections(b, o, params, t) for b, o, t in zip(boxes, outputs, traces, strict=True)]


def run_cascade(image: np.ndarray, backend: Backend, params: CascadeParams | None = None,
                trace: bool = False, timer: StageTimer = NO_TIMER, pool: Executor | None = None) -> Detections:
    """Detect faces in one BGR uint8 (H, W, 3) image with a backend; see the module docstring.

    With ``trace=True`` the result's ``trace`` holds the per-stage candidates in the format of
    ``reference/cpp_mtcnn_dev_stages.json``. A :class:`~mtcnn_lab.cascade.timer.StageTimer` collects
    the time spent in each stage (pyramid, pnet, proposals_nms, crops, rnet, onet). With ``pool``
    (an executor with a free thread) the resizing is split over this thread and the pool's.
    """
    return run_cascade_batch([image], backend, params, trace, timer, pool)[0]
