"""OpenFace's box arithmetic (:mod:`mtcnn_lab.cascade.boxes`) and face probabilities as torch ops, batched
over groups of boxes (one group per frame, or per frame and pyramid level), with the same bits.

Boxes are (N, 4) ``x, y, width, height`` tensors in OpenFace's 1-based convention, float32 or int64;
``groups`` (N,) int64 says which group each box belongs to and is ascending (each group's boxes together,
in the order OpenFace lists them: the order that decides NMS ties).
"""

from __future__ import annotations

import numpy as np
import torch

from mtcnn_lab.cascade.device.precision import wide

PAIR_BUDGET = 1 << 22
"""At most this many box pairs (group x boxes x boxes) are compared in one step of :func:`grouped_nms` (a
single group of more boxes is compared whole: about 50 bytes per pair)."""
PARALLEL_ROUNDS = 8
"""Rounds of parallel greedy NMS before the remaining boxes are decided sequentially on the host."""


def float32_scalar(value: float, like: torch.Tensor) -> torch.Tensor:
    """``value`` rounded to float32, as a tensor of ``like``'s shape and device (compared elementwise)."""
    return torch.full(like.shape, float(np.float32(value)), dtype=torch.float32, device=like.device)


def float_exp(x: torch.Tensor) -> torch.Tensor:
    """float32 ``exp``, computed in double and rounded once, as ``cascade.proposals.float_exp`` (the same bits
    wherever both double ``exp``s are within two double ulps: every float32 input but two lies farther from a
    float32 rounding boundary; ``tests/test_device_cascade.py`` pins those two)."""
    return torch.exp(wide(x)).to(x.device, torch.float32)


def face_probability(logits: torch.Tensor) -> torch.Tensor:
    """PNet's float32 face probability ``1 / (1 + exp(l0 - l1))`` of (B, 6, h, w) heat maps: (B, h, w)."""
    e = float_exp(logits[:, 0] - logits[:, 1])
    one = torch.ones_like(e)
    return one / (one + e)


def crop_scores(outputs: torch.Tensor) -> torch.Tensor:
    """RNet/ONet probabilities of (N, >=2) outputs as OpenFace stores them: float exp, double ``1 / (1 + e)``."""
    e = wide(float_exp(outputs[:, 0] - outputs[:, 1]))
    one = torch.ones_like(e)
    return (one / (one + e)).to(outputs.device, torch.float32)


def integer_rects(boxes: torch.Tensor) -> torch.Tensor:
    """``cv::Rect(Rect_<float>)``: every value rounded half to even, int64 (exact in the boxes' own dtype)."""
    return torch.round(boxes).to(torch.int64) if boxes.is_floating_point() else boxes.to(torch.int64)


def apply_regression(boxes: torch.Tensor, regression: torch.Tensor, add1: bool) -> torch.Tensor:
    """OpenFace's ``apply_correction`` (``cascade.boxes.apply_regression``): float32 (N, 4) boxes."""
    rects = integer_rects(boxes)
    if add1:
        rects = torch.cat([rects[:, :2], rects[:, 2:] + 1], 1)
    x, y, w, h = (rects[:, k].to(torch.float32) for k in range(4))
    right = (rects[:, 0] + rects[:, 2]).to(torch.float32)
    bottom = (rects[:, 1] + rects[:, 3]).to(torch.float32)
    reg = regression.to(torch.float32)
    x1 = x + reg[:, 0] * w
    y1 = y + reg[:, 1] * h
    x2 = right + reg[:, 2] * w
    y2 = bottom + reg[:, 3] * h
    return torch.stack([x1, y1, x2 - x1, y2 - y1], 1)


def square_boxes(boxes: torch.Tensor) -> torch.Tensor:
    """OpenFace's ``rectify`` (``cascade.boxes.square_boxes``): int64 (N, 4) ``x, y, s, s``."""
    w, h = boxes[:, 2], boxes[:, 3]
    side = torch.maximum(w, h)
    x = (wide(boxes[:, 0]) + 0.5 * wide(w - side)).to(torch.float32)
    y = (wide(boxes[:, 1]) + 0.5 * wide(h - side)).to(torch.float32)
    s = torch.trunc(side).to(torch.int64)
    x, y = torch.trunc(x).to(torch.int64).to(s.device), torch.trunc(y).to(torch.int64).to(s.device)
    return torch.stack([x, y, s, s], 1)


def _suppressions(rects: torch.Tensor, valid: torch.Tensor, threshold: float, by_min: bool) -> torch.Tensor:
    """(G, n, n) bool: box ``i`` suppresses box ``j`` of its group (``i`` before ``j`` in pick order, both
    valid, overlap > threshold), overlaps as ``cascade.boxes._greedy_picks`` computes them."""
    x, y, w, h = rects.unbind(2)
    i, j = (slice(None), slice(None), None), (slice(None), None, slice(None))
    iw = torch.minimum((x + w)[i], (x + w)[j]) - torch.maximum(x[i], x[j])
    ih = torch.minimum((y + h)[i], (y + h)[j]) - torch.maximum(y[i], y[j])
    inter = torch.where((iw > 0) & (ih > 0), (iw * ih).to(torch.float32), 0.0)
    area = w * h
    if by_min:
        denom = torch.minimum(area[i], area[j]).to(torch.float32)
    else:
        denom = (area[i] + area[j]).to(torch.float32) - inter
    over = inter / denom > float32_scalar(threshold, inter)
    n = rects.shape[1]
    later = torch.ones(n, n, dtype=torch.bool, device=rects.device).triu(1)
    return over & later & valid[i] & valid[j]


def _greedy_keep(suppress: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Greedy NMS in rounds: a box is kept once no box before it that is still alive suppresses it, removed
    once a kept box does. Each round decides at least the first undecided box; after :data:`PARALLEL_ROUNDS`
    (long chains of boxes each suppressing the next) the rest is decided one box at a time on the host.
    Returns (G, n) bool: the kept boxes."""
    kept = torch.zeros_like(valid)
    undecided = valid.clone()
    weights = suppress.to(torch.float32)
    for _ in range(PARALLEL_ROUNDS):
        if not bool(undecided.any()):
            return kept
        blocked = torch.einsum("gi,gij->gj", (kept | undecided).to(torch.float32), weights) > 0
        newly = undecided & ~blocked
        kept |= newly
        killed = torch.einsum("gi,gij->gj", kept.to(torch.float32), weights) > 0
        undecided &= ~newly & ~killed
    return _finish_on_host(suppress, kept, undecided)


def _finish_on_host(suppress: torch.Tensor, kept: torch.Tensor, undecided: torch.Tensor) -> torch.Tensor:
    """The undecided boxes decided in pick order, each kept unless a kept box suppresses it."""
    sup, keep, todo = suppress.cpu().numpy(), kept.cpu().numpy(), undecided.cpu().numpy()
    for g, i in zip(*np.nonzero(todo), strict=True):  # row-major: each group in pick order
        keep[g, i] = not (keep[g] & sup[g, :, i]).any()
    return torch.from_numpy(keep).to(kept.device)


def grouped_nms(boxes: torch.Tensor, scores: torch.Tensor, groups: torch.Tensor, n_groups: int,
                threshold: float, by_min: bool = False) -> torch.Tensor:
    """OpenFace's NMS within each group (``cascade.boxes.nms``): the indices (into ``boxes``) kept, group by
    group, each in pick order: highest score first, the later box first among equal scores; a box is
    removed when its overlap with a picked one is strictly greater than ``threshold`` (IoU, or over the
    smaller area with ``by_min``), overlaps of integer rects."""
    counts = torch.bincount(groups, minlength=n_groups)
    starts = torch.cumsum(counts, 0) - counts
    largest = int(counts.max()) if len(boxes) else 0
    if largest == 0:
        return torch.zeros(0, dtype=torch.int64, device=boxes.device)
    position = torch.arange(len(boxes), device=boxes.device) - starts[groups]
    padded = torch.full((n_groups, largest), float("-inf"), dtype=torch.float32, device=boxes.device)
    padded[groups, position] = scores.to(torch.float32)
    # ascending stable sort, reversed: descending, later index first on ties, the -inf padding last
    order = torch.sort(padded, dim=1, stable=True).indices.flip(1)
    index = (starts[:, None] + order).clamp(max=max(len(boxes) - 1, 0))
    valid = order < counts[:, None]
    rects = integer_rects(boxes)[index]
    kept = torch.zeros_like(valid)
    step = max(1, PAIR_BUDGET // (largest * largest))
    for first in range(0, n_groups, step):
        part = slice(first, first + step)
        kept[part] = _greedy_keep(_suppressions(rects[part], valid[part], threshold, by_min), valid[part])
    return index[kept]
