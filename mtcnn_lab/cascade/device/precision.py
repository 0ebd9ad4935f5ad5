"""Where the device cascade computes in double: OpenFace's steps that run in double (crop taps, squaring, the
RNet/ONet score) and the float32 ``exp``, which is computed in double and rounded once."""

from __future__ import annotations

import torch


def wide(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` as float64, on its device, or on the CPU for devices without float64 (Apple MPS)."""
    if tensor.device.type == "mps":
        return tensor.to("cpu", torch.float64)
    return tensor.to(torch.float64)
