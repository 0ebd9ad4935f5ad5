"""The reference backend (:mod:`mtcnn_lab.nets.reference`, numpy, OpenFace's C++ semantics) and its FP16 emulation."""

from __future__ import annotations

import numpy as np

from mtcnn_lab.backends.base import NetRunner, fp16_nets, precision_suffix
from mtcnn_lab.backends.batch_invariance import measure_batch_limits
from mtcnn_lab.nets import reference
from mtcnn_lab.weights.netspec import NET_NAMES, WeightSet
from mtcnn_lab.weights.sets import rounded_weights


class NumpyBackend(NetRunner):
    """Runs the three nets with the reference CNN: the slowest and the most exact backend.

    ``precision`` (see :data:`~mtcnn_lab.backends.base.PRECISIONS`) other than ``"fp32"`` emulates
    FP16 for the nets it names: their weights, input and every layer's output are rounded to
    float16 (arithmetic inside a layer stays float32). That is what an FP16 runtime such as Core ML
    on the Neural Engine computes, up to its accumulation order, so its numerics can be judged on
    any machine.
    """

    def __init__(self, weights: WeightSet, precision: str = "fp32"):
        self.half = fp16_nets(precision)
        rounded = rounded_weights(weights, np.float16) if self.half else weights
        self.weights = WeightSet(rounded.name, **{net: (rounded if net in self.half else weights).nets()[net]
                                                   for net in NET_NAMES}, source=weights.source)
        self.name = "numpy" + precision_suffix(precision)
        self.batch_limits = measure_batch_limits(self)

    def _dtype(self, net: str) -> type | None:
        return np.float16 if net in self.half else None

    def _run(self, net: str, batch: np.ndarray) -> np.ndarray:
        return reference.forward(self.weights.nets()[net], batch, self._dtype(net))

    def run_layers(self, net: str, batch: np.ndarray) -> dict[str, np.ndarray]:
        """Every layer's output of ``net`` (``pnet``, ``rnet``, ``onet``) on a batch."""
        return reference.forward_layers(self.weights.nets()[net], batch, self._dtype(net))
