"""What every runtime backend provides: the three network calls on batches.

Inputs are float32 R,G,B batches normalised as ``(v - 127.5) * 0.0078125``; outputs are the raw
last-layer values in OpenFace's order (logit non-face, logit face, dx1, dy1, dx2, dy2, then for
ONet five landmark x and five landmark y). Backends know nothing about boxes.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np


class Backend(Protocol):
    """A runtime that evaluates PNet, RNet and ONet."""

    name: str

    def run_pnet(self, images: np.ndarray) -> np.ndarray:
        """(N, 3, h, w) same-size pyramid levels -> (N, 6, h', w') heat maps."""
        ...

    def run_rnet(self, crops: np.ndarray) -> np.ndarray:
        """(N, 3, 24, 24) crops -> (N, 6) outputs."""
        ...

    def run_onet(self, crops: np.ndarray) -> np.ndarray:
        """(N, 3, 48, 48) crops -> (N, 16) outputs."""
        ...
