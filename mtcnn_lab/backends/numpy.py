"""The reference backend (:mod:`mtcnn_lab.reference`, numpy, OpenFace's C++ semantics) and its
FP16 emulation."""

from __future__ import annotations

import numpy as np

from .. import reference
from ..weights import WeightSet, rounded_weights


class NumpyBackend:
    """Runs the three nets with the reference CNN: the slowest and the most exact backend.

    ``fp16_emulation=True`` rounds the weights, the network input and every layer's output to
    float16 (arithmetic inside a layer stays float32): what an FP16 runtime such as Core ML on the
    Neural Engine computes, up to its accumulation order, so its numerics can be judged anywhere.
    """

    def __init__(self, weights: WeightSet, fp16_emulation: bool = False):
        self.activation_dtype = np.float16 if fp16_emulation else None
        self.weights = rounded_weights(weights, np.float16) if fp16_emulation else weights
        self.name = "numpy-fp16-emulation" if fp16_emulation else "numpy"

    def run_pnet(self, images: np.ndarray) -> np.ndarray:
        """(N, 3, h, w) -> (N, 6, h', w') PNet heat maps."""
        return reference.forward(self.weights.pnet, images, self.activation_dtype)

    def run_rnet(self, crops: np.ndarray) -> np.ndarray:
        """(N, 3, 24, 24) -> (N, 6) RNet outputs."""
        return reference.forward(self.weights.rnet, crops, self.activation_dtype)

    def run_onet(self, crops: np.ndarray) -> np.ndarray:
        """(N, 3, 48, 48) -> (N, 16) ONet outputs."""
        return reference.forward(self.weights.onet, crops, self.activation_dtype)

    def run_layers(self, net: str, batch: np.ndarray) -> dict[str, np.ndarray]:
        """Every layer's output of ``net`` (``pnet``, ``rnet``, ``onet``) on a batch."""
        return reference.forward_layers(self.weights.nets()[net], batch, self.activation_dtype)
