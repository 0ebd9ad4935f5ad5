"""The reference backend: :mod:`mtcnn_lab.reference` (numpy, OpenFace's C++ semantics)."""

from __future__ import annotations

import numpy as np

from .. import reference
from ..weights import WeightSet


class NumpyBackend:
    """Runs the three nets with the reference CNN; the slowest and the most exact backend."""

    name = "numpy"

    def __init__(self, weights: WeightSet):
        self.weights = weights

    def run_pnet(self, images: np.ndarray) -> np.ndarray:
        """(N, 3, h, w) -> (N, 6, h', w') PNet heat maps."""
        return reference.forward(self.weights.pnet, images)

    def run_rnet(self, crops: np.ndarray) -> np.ndarray:
        """(N, 3, 24, 24) -> (N, 6) RNet outputs."""
        return reference.forward(self.weights.rnet, crops)

    def run_onet(self, crops: np.ndarray) -> np.ndarray:
        """(N, 3, 48, 48) -> (N, 16) ONet outputs."""
        return reference.forward(self.weights.onet, crops)
