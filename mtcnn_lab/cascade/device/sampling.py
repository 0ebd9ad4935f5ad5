"""OpenFace's bilinear resize of :mod:`mtcnn_lab.cascade.resize` as torch ops, for pyramid levels and crops.

Every output pixel is computed with the same float32 operations in the same order as the compiled host
kernel: taps ``f = float32((d + 0.5) * (1 / (dst / src)) - 0.5)`` worked out in double, then per channel
``h = p0 * w0 + p1 * w1`` along x, ``(h0 * v0 + h1 * v1 - 127.5) * 0.0078125`` along y. Each is a
separate elementwise torch op (IEEE float32, no fused multiply-add), divisions are tensor by tensor (torch
turns a division by a scalar into a multiplication by its reciprocal), so the results are those bits on the
CPU and on CUDA. Frames are BGR uint8 (B, H, W, 3) tensors; outputs float32 (M, 3, h, w) in R, G, B order.
"""

from __future__ import annotations

import torch

from mtcnn_lab.cascade.device.precision import wide

MEAN, UNIT = 127.5, 0.0078125  # exact in float32: MTCNN's (v - 127.5) * 0.0078125


def _linear_taps(length: torch.Tensor, out_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per window of ``length`` (M,) source pixels: OpenCV's INTER_LINEAR source index (M, out_size) int64 and
    float32 weight of the second tap, clamped at the window's borders (``cascade.resize._linear_taps``)."""
    src = wide(length)[:, None]
    d = torch.arange(out_size, dtype=torch.float64, device=src.device)[None, :]
    scale = torch.ones_like(src) / (torch.full_like(src, out_size) / src)
    f = ((d + 0.5) * scale - 0.5).to(torch.float32)
    index = torch.floor(f)
    f = f - index
    index = index.to(torch.int64)
    below = index < 0
    f, index = torch.where(below, 0.0, f), torch.where(below, 0, index)
    beyond = index >= src.to(torch.int64) - 1
    f, index = torch.where(beyond, 0.0, f), torch.where(beyond, src.to(torch.int64) - 1, index)
    return index.to(length.device), f.to(length.device)


def window_taps(start: torch.Tensor, length: torch.Tensor, limit: int,
                out_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Both taps of windows of ``length`` pixels at ``start`` (int64 (M,)) along an image axis of ``limit``
    pixels: clamped indices ``i0, i1`` (M, out_size) and float32 weights ``w0, w1``; a tap outside the
    image gets weight 0 (OpenFace's zero-filled crop buffer), as ``cascade.resize._window_taps``."""
    index, w1 = _linear_taps(length, out_size)
    start, length = start[:, None], length[:, None]
    p0 = start + index
    p1 = start + torch.minimum(index + 1, length - 1)
    w0 = torch.where((p0 >= 0) & (p0 < limit), torch.ones_like(w1) - w1, 0.0)
    w1 = torch.where((p1 >= 0) & (p1 < limit), w1, 0.0)
    return p0.clamp(0, limit - 1), p1.clamp(0, limit - 1), w0, w1


def resize_windows(frames: torch.Tensor, frame_of: torch.Tensor, top: torch.Tensor, left: torch.Tensor,
                   height: torch.Tensor, width: torch.Tensor, out_h: int, out_w: int) -> torch.Tensor:
    """Window ``m`` (``height x width`` pixels at ``top, left`` of frame ``frame_of[m]``, int64 (M,) each)
    of BGR uint8 ``frames`` (B, H, W, 3) resized to ``out_h x out_w`` and normalised: float32
    (M, 3, out_h, out_w) R, G, B. Pixels outside the frame count as 0."""
    y0, y1, v0, v1 = window_taps(top, height, frames.shape[1], out_h)
    x0, x1, w0, w1 = window_taps(left, width, frames.shape[2], out_w)
    f = frame_of[:, None, None]

    def pixels(ys: torch.Tensor, xs: torch.Tensor) -> torch.Tensor:  # (M, out_h, out_w, 3) float32
        return frames[f, ys[:, :, None], xs[:, None, :]].to(torch.float32)

    w0, w1 = w0[:, None, :, None], w1[:, None, :, None]
    h0 = pixels(y0, x0) * w0 + pixels(y0, x1) * w1
    h1 = pixels(y1, x0) * w0 + pixels(y1, x1) * w1
    out = (h0 * v0[:, :, None, None] + h1 * v1[:, :, None, None] - MEAN) * UNIT
    return out.flip(3).permute(0, 3, 1, 2).contiguous()


def pyramid_level(frames: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Every frame of ``frames`` (B, H, W, 3) resized whole to ``size = (h, w)``: float32 (B, 3, h, w)."""
    batch, height, width = frames.shape[:3]
    zeros = torch.zeros(batch, dtype=torch.int64, device=frames.device)
    return resize_windows(frames, torch.arange(batch, device=frames.device), zeros, zeros,
                          torch.full_like(zeros, height), torch.full_like(zeros, width), *size)


def crops(frames: torch.Tensor, frame_of: torch.Tensor, boxes: torch.Tensor, size: int) -> torch.Tensor:
    """Network inputs (M, 3, size, size) for square int64 boxes (M, 4) ``[x, y, s, s]`` (1-based) of frames
    ``frame_of``: the window of ``s + 1`` pixels at 0-based ``(y - 1, x - 1)``, as ``cascade.crops``."""
    side = boxes[:, 2] + 1
    return resize_windows(frames, frame_of, boxes[:, 1] - 1, boxes[:, 0] - 1, side, side, size, size)
