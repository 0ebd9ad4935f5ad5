"""The cascade of :mod:`mtcnn_lab.cascade.stages` on a torch device, for many frames at once.

1. frames of one size go to the device once, as uint8 (B, H, W, 3);
2. each pyramid level of all frames is resized there and goes through PNet in as few calls as the nets'
   measured batch limit allows; the cells of all frames become proposals in OpenFace's x-major order;
3. NMS per frame and level, then per frame across levels, regression and squaring;
4. RNet on the crops of all frames, in call groups of whole frames (``cascade.stages.call_groups``), then
   threshold, NMS, regression and squaring; 5. the same with ONet, regression (+1) and NMS "min";
6. the kept faces come back and :func:`~mtcnn_lab.cascade.stages.final_detections` decodes them.

Every step has the host cascade's arithmetic (``docs/openface_mtcnn.md`` §5-§9), so with the same network
outputs the Detections and traces are the host's to the bit; the networks' outputs for a frame do not depend
on the other frames of its batch (the call groups stay within the measured batch limits).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch

from mtcnn_lab.backends.base import DeviceNets
from mtcnn_lab.cascade.device.boxes import (
    apply_regression,
    crop_scores,
    face_probability,
    float32_scalar,
    grouped_nms,
    square_boxes,
)
from mtcnn_lab.cascade.device.sampling import crops, pyramid_level
from mtcnn_lab.cascade.proposals import PNET_STRIDE
from mtcnn_lab.cascade.stages import call_groups, final_detections
from mtcnn_lab.cascade.timer import NO_TIMER, StageTimer
from mtcnn_lab.detections import Detections
from mtcnn_lab.params import FACE_CELL, CascadeParams, level_size, pyramid_scales
from mtcnn_lab.weights.netspec import CROP_SIZES

__all__ = ["run_device_cascade"]


class Candidates:
    """Boxes of several frames on the device: ``boxes`` (N, 4), ``frame`` (N,) int64 ascending, and per box
    any other tensors (scores, regressions) in ``extra``."""

    def __init__(self, boxes: torch.Tensor, frame: torch.Tensor, **extra: torch.Tensor):
        self.boxes, self.frame, self.extra = boxes, frame, extra

    def take(self, index: torch.Tensor) -> Candidates:
        """The candidates at ``index`` (a bool mask or int64 indices), in that order."""
        return Candidates(self.boxes[index], self.frame[index], **{k: v[index] for k, v in self.extra.items()})

    def per_frame(self, n_frames: int) -> list[int]:
        """How many candidates each frame has (one device-to-host copy)."""
        return torch.bincount(self.frame, minlength=n_frames).tolist()


def run_device_cascade(images: Sequence[np.ndarray], nets: DeviceNets, params: CascadeParams | None = None,
                       trace: bool = False, timer: StageTimer = NO_TIMER) -> list[Detections]:
    """Faces in BGR uint8 (H, W, 3) images, one :class:`Detections` per image in order, computed on the device
    of ``nets``; images of several sizes are grouped by size (each size in one pass). ``trace`` and ``timer``
    as :func:`mtcnn_lab.cascade.stages.run_cascade` (the timer waits for the device at each stage's end)."""
    params = params or CascadeParams()
    by_size: dict[tuple, list[int]] = defaultdict(list)
    for index, image in enumerate(images):
        by_size[image.shape].append(index)
    results: list[Detections | None] = [None] * len(images)
    for indices in by_size.values():
        frames = np.stack([np.ascontiguousarray(images[i]) for i in indices])
        for index, found in zip(indices, _same_size(frames, nets, params, trace, timer), strict=True):
            results[index] = found
    return results  # type: ignore[return-value]


def _same_size(frames: np.ndarray, nets: DeviceNets, params: CascadeParams, trace: bool,
               timer: StageTimer) -> list[Detections]:
    """Steps 1-6 for BGR uint8 frames (B, H, W, 3) of one size."""
    n = len(frames)
    traces: list[dict | None] = [{"pnet_scales": []} if trace else None for _ in range(n)]
    with torch.inference_mode():
        with _stage(timer, "pyramid", nets):
            on_device = torch.from_numpy(frames).to(nets.device)
        proposals = _stage_pnet(on_device, nets, params, traces, timer)
        outputs = _run_on_crops(on_device, proposals, nets, "rnet", timer)
        refined = _rnet_refine(proposals, outputs, nets, n, params, traces, timer)
        outputs = _run_on_crops(on_device, refined, nets, "onet", timer)
        return _onet_detections(refined, outputs, n, params, traces)


@contextmanager
def _stage(timer: StageTimer, name: str, nets: DeviceNets) -> Iterator[None]:
    """``timer(name)``, waiting for the device's queued work before the clock stops (CUDA runs async)."""
    if timer is NO_TIMER:
        yield
        return
    with timer(name):
        yield
        if nets.device.type == "cuda":
            torch.cuda.synchronize(nets.device)


def _calls(nets: DeviceNets, net: str, batch: torch.Tensor, rows: list[int]) -> torch.Tensor:
    """``net`` on ``batch`` whose rows belong to frames with ``rows`` rows each, frames joined in one call up
    to the measured batch limit (:func:`~mtcnn_lab.cascade.stages.call_groups`); outputs in row order."""
    starts = np.concatenate([[0], np.cumsum(rows)])
    groups = call_groups(rows, nets.batch_limits[net])
    if len(groups) == 1:
        return nets.run_tensor(net, batch)
    # each call on a fresh copy: its memory aligned like the batches the limits were measured on (GPU
    # libraries choose kernels by alignment too)
    return torch.cat([nets.run_tensor(net, batch[starts[group[0]]:starts[group[-1] + 1]].clone())
                      for group in groups])


def _level_proposals(heat: torch.Tensor, scale: float, params: CascadeParams) -> Candidates:
    """Cells of (B, 6, h, w) heat maps with probability >= t1, frame by frame, each frame's column by column
    (x outer, y inner) as OpenFace scans them, as float32 boxes in image pixels (``cascade.proposals``)."""
    prob = face_probability(heat)
    frame, x, y = torch.nonzero(prob.transpose(1, 2) >= float32_scalar(params.thresholds[0], prob.transpose(1, 2)),
                                as_tuple=True)
    found = [coordinate.to(torch.float32) for coordinate in (PNET_STRIDE * x + 1, PNET_STRIDE * y + 1,
                                                              PNET_STRIDE * x + FACE_CELL, PNET_STRIDE * y + FACE_CELL)]
    scale32 = float32_scalar(scale, found[0])
    x1, y1, x2, y2 = (torch.trunc(c / scale32) for c in found)
    boxes = torch.stack([x1, y1, x2 - x1, y2 - y1], 1)
    return Candidates(boxes, frame, scores=prob[frame, y, x], regs=heat[frame, :, y, x][:, 2:6])


def _stage_pnet(frames: torch.Tensor, nets: DeviceNets, params: CascadeParams, traces: list[dict | None],
                timer: StageTimer) -> Candidates:
    """Steps 2-3: square int64 boxes ``[x, y, s, s]`` of every frame, frame by frame in pick order."""
    n, height, width = frames.shape[:3]
    levels: list[Candidates] = []
    for scale in pyramid_scales(height, width, params.min_face, params.factor):
        with _stage(timer, "pyramid", nets):
            level = pyramid_level(frames, level_size(height, width, scale))
        with _stage(timer, "pnet", nets):
            heat = _calls(nets, "pnet", level, [1] * n)
        with _stage(timer, "proposals_nms", nets):
            cells = _level_proposals(heat, scale, params)
            kept = cells.take(grouped_nms(cells.boxes, cells.extra["scores"], cells.frame, n, params.nms_per_scale))
        levels.append(kept)
        if traces[0] is not None:
            for trace, above, after in zip(traces, cells.per_frame(n), kept.per_frame(n), strict=True):
                trace["pnet_scales"].append({
                    "scale": scale, "pyr_wh": [level.shape[3], level.shape[2]],
                    "heatmap_wh": [heat.shape[3], heat.shape[2]], "n_above_t1": above, "n_after_nms05": after})
    if not levels:
        return Candidates(torch.zeros((0, 4), dtype=torch.int64, device=frames.device),
                          torch.zeros(0, dtype=torch.int64, device=frames.device))
    with _stage(timer, "proposals_nms", nets):
        joined = Candidates(torch.cat([c.boxes for c in levels]), torch.cat([c.frame for c in levels]),
                            scores=torch.cat([c.extra["scores"] for c in levels]),
                            regs=torch.cat([c.extra["regs"] for c in levels]))
        joined = joined.take(torch.sort(joined.frame, stable=True).indices)  # per frame, levels in order
        kept = joined.take(grouped_nms(joined.boxes, joined.extra["scores"], joined.frame, n, params.nms_pyramid))
        squared = square_boxes(apply_regression(kept.boxes, kept.extra["regs"], add1=False))
    if traces[0] is not None:
        for trace, count in zip(traces, kept.per_frame(n), strict=True):
            trace["n_after_cross_scale_nms07"] = count
    return Candidates(squared, kept.frame)


def _run_on_crops(frames: torch.Tensor, boxes: Candidates, nets: DeviceNets, net: str,
                  timer: StageTimer) -> torch.Tensor:
    """RNet's or ONet's raw outputs for the crops of ``boxes``, in their order."""
    rows = boxes.per_frame(len(frames))
    with _stage(timer, "crops", nets):
        batch = crops(frames, boxes.frame, boxes.boxes, CROP_SIZES[net])
    if not len(batch):
        return torch.zeros((0, 6 if net == "rnet" else 16), dtype=torch.float32, device=frames.device)
    with _stage(timer, net, nets):
        return _calls(nets, net, batch, rows)


def _rnet_refine(boxes: Candidates, outputs: torch.Tensor, nets: DeviceNets, n: int, params: CascadeParams,
                 traces: list[dict | None], timer: StageTimer) -> Candidates:
    """Step 4 after RNet (``cascade.stages.rnet_refine`` for all frames): squared boxes for ONet."""
    with _stage(timer, "proposals_nms", nets):
        scores = crop_scores(outputs)
        passed = scores >= float32_scalar(params.thresholds[1], scores)
        survivors = boxes.take(passed)
        survivors.extra.update(scores=scores[passed], regs=outputs[passed][:, 2:6])
        kept = survivors.take(grouped_nms(survivors.boxes, survivors.extra["scores"], survivors.frame, n,
                                          params.nms_rnet))
    if traces[0] is not None:
        for i, (box_list, score_list, n_pass, n_kept) in enumerate(zip(
                _split(boxes.boxes, boxes.frame, n), _split(scores, boxes.frame, n),
                survivors.per_frame(n), kept.per_frame(n), strict=True)):
            traces[i].update(rnet_input_boxes=box_list, rnet_scores=score_list, n_rnet_pass=n_pass,
                             n_after_rnet_nms07=n_kept)
    return Candidates(square_boxes(apply_regression(kept.boxes, kept.extra["regs"], add1=False)), kept.frame)


def _onet_detections(boxes: Candidates, outputs: torch.Tensor, n: int, params: CascadeParams,
                     traces: list[dict | None]) -> list[Detections]:
    """Step 5 after ONet and step 6: per frame, the faces (``cascade.stages.onet_detections``)."""
    scores = crop_scores(outputs)
    passed = scores >= float32_scalar(params.thresholds[2], scores)
    faces = boxes.take(passed)
    faces.extra.update(scores=scores[passed], outputs=outputs[passed])
    faces.extra["regressed"] = apply_regression(faces.boxes, outputs[passed][:, 2:6], add1=True)
    faces = faces.take(grouped_nms(faces.extra["regressed"], faces.extra["scores"], faces.frame, n,
                                   params.nms_onet, by_min=True))
    if traces[0] is not None:
        for trace, box_list, score_list in zip(traces, _split(boxes.boxes, boxes.frame, n),
                                               _split(scores, boxes.frame, n), strict=True):
            trace.update(onet_input_boxes=box_list, onet_scores=score_list)
    frame = faces.frame.cpu().numpy()
    host = {"boxes": faces.boxes.cpu().numpy(), **{k: v.cpu().numpy() for k, v in faces.extra.items()}}
    return [final_detections(host["boxes"][frame == i], host["outputs"][frame == i], host["regressed"][frame == i],
                             host["scores"][frame == i], params, traces[i]) for i in range(n)]


def _split(values: torch.Tensor, frame: torch.Tensor, n: int) -> list[list]:
    """``values`` as Python lists, one per frame (the trace's lists)."""
    array, frame = values.cpu().numpy(), frame.cpu().numpy()
    return [array[frame == i].tolist() for i in range(n)]
