"""The in-memory description of PNet, RNet and ONet: layer dataclasses, ``NetSpec`` and ``WeightSet``.

A :class:`NetSpec` is the single description of a net that every other part of the package consumes
(the reference CNN, the torch, OpenVINO and ONNX graphs, the converters). Arrays keep OpenFace's layout:

* ``Conv.weight`` is (n_out, n_in, kh, kw) float32, a cross-correlation kernel with rows = dy and
  columns = dx; input map 0 of the first layer is **R** (OpenFace feeds R, G, B).
* ``FC.weight`` is (n_out, n_in) float32 so that ``y = W @ x + b``; for the first FC layer of RNet
  and ONet, ``x`` is each feature map flattened **transposed** (channel, then x, then y).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["NET_NAMES", "CROP_SIZES", "MIN_INPUT_SIDES", "INPUT_DESCRIPTION", "OUTPUT_DESCRIPTION", "Conv", "PReLU",
           "MaxPool", "FC", "Sigmoid", "Layer", "NetSpec", "WeightSet"]

NET_NAMES = ("pnet", "rnet", "onet")
CROP_SIZES = {"rnet": 24, "onet": 48}
"""The side in pixels of RNet's and ONet's square inputs (PNet takes a pyramid level of any size)."""
MIN_INPUT_SIDES = {"pnet": 12, **CROP_SIZES}
"""The smallest input side of each net in pixels: PNet's 12x12 cell, RNet's and ONet's crops."""
INPUT_DESCRIPTION = "float32 (N, 3, H, W): channels R, G, B, values (v - 127.5) * 0.0078125"
"""Every net's input, as exported models describe it."""
OUTPUT_DESCRIPTION = {
    "pnet": "float32 (N, 6, h, w): logit non-face, logit face, dx1, dy1, dx2, dy2 per 12x12 cell (stride 2)",
    "rnet": "float32 (N, 6): logit non-face, logit face, dx1, dy1, dx2, dy2",
    "onet": "float32 (N, 16): logit non-face, logit face, dx1, dy1, dx2, dy2, landmarks x1..x5, y1..y5",
}
"""Each net's raw output, as exported models describe it."""


@dataclass(frozen=True, eq=False)
class Conv:
    """Valid, stride-1 cross-correlation; weight (n_out, n_in, kh, kw), bias (n_out,), float32."""

    weight: np.ndarray
    bias: np.ndarray
    kind: str = field(default="conv", init=False)


@dataclass(frozen=True, eq=False)
class PReLU:
    """``x if x >= 0 else slope * x``; one slope per channel (maps) or per neuron (vectors)."""

    slopes: np.ndarray
    kind: str = field(default="prelu", init=False)


@dataclass(frozen=True)
class MaxPool:
    """Max-pool without padding; OpenFace's output size ``round((in - k) / s) + 1``, clipped edges."""

    kernel_x: int
    kernel_y: int
    stride_x: int
    stride_y: int
    kind: str = field(default="pool", init=False)


@dataclass(frozen=True, eq=False)
class FC:
    """Fully connected ``y = weight @ x + bias``; weight (n_out, n_in), bias (n_out,), float32."""

    weight: np.ndarray
    bias: np.ndarray
    kind: str = field(default="fc", init=False)


@dataclass(frozen=True)
class Sigmoid:
    """Element-wise logistic function (a valid OpenFace layer type, unused by the MTCNN files)."""

    kind: str = field(default="sigmoid", init=False)


Layer = Conv | PReLU | MaxPool | FC | Sigmoid


@dataclass(frozen=True, eq=False)
class NetSpec:
    """One network: its name (``pnet``, ``rnet``, ``onet``) and its layers in file order."""

    name: str
    layers: tuple[Layer, ...]

    def layer_keys(self) -> list[str]:
        """Names ``lNN_<kind>`` as used by the C++ layer dumps (NN = 0-based index in the file)."""
        return [f"l{i:02d}_{layer.kind}" for i, layer in enumerate(self.layers)]

    def summary(self) -> list[dict]:
        """One row per layer: key, kind, parameter shape(s), parameter count, value range."""
        rows = []
        for key, layer in zip(self.layer_keys(), self.layers, strict=True):
            arrays = [a for k, a in self.arrays().items() if k.startswith(key + ".") and a.dtype == np.float32]
            values = np.concatenate([a.ravel() for a in arrays]) if arrays else np.zeros(0, np.float32)
            row = {"layer": key, "kind": layer.kind, "shape": [list(a.shape) for a in arrays],
                   "parameters": int(values.size),
                   "min": float(values.min()) if values.size else None,
                   "max": float(values.max()) if values.size else None}
            if isinstance(layer, MaxPool):
                row["shape"] = [[layer.kernel_y, layer.kernel_x], [layer.stride_y, layer.stride_x]]
            rows.append(row)
        return rows

    def arrays(self) -> dict[str, np.ndarray]:
        """Every parameter array, keyed ``lNN_<kind>.<field>`` (for saving and for comparing)."""
        out: dict[str, np.ndarray] = {}
        for key, layer in zip(self.layer_keys(), self.layers, strict=True):
            if isinstance(layer, Conv | FC):
                out[f"{key}.weight"], out[f"{key}.bias"] = layer.weight, layer.bias
            elif isinstance(layer, PReLU):
                out[f"{key}.slopes"] = layer.slopes
            elif isinstance(layer, MaxPool):
                out[f"{key}.pool"] = np.array(
                    [layer.kernel_x, layer.kernel_y, layer.stride_x, layer.stride_y], np.int32
                )
            else:
                out[f"{key}.sigmoid"] = np.zeros(0, np.int32)
        return out

    def equals(self, other: NetSpec) -> bool:
        """True when both nets have the same layers and bit-identical parameters."""
        a, b = self.arrays(), other.arrays()
        return a.keys() == b.keys() and all(
            a[k].dtype == b[k].dtype and a[k].shape == b[k].shape and a[k].tobytes() == b[k].tobytes()
            for k in a
        )


@dataclass(frozen=True, eq=False)
class WeightSet:
    """The three nets of one weight set, its name (``openface`` or ``zhang2016``) and origin."""

    name: str
    pnet: NetSpec
    rnet: NetSpec
    onet: NetSpec
    source: str

    def nets(self) -> dict[str, NetSpec]:
        """``{"pnet": ..., "rnet": ..., "onet": ...}``."""
        return {"pnet": self.pnet, "rnet": self.rnet, "onet": self.onet}
