"""The reference CNN: numpy with OpenFace's exact C++ semantics, able to return every layer.

Inputs are batches (N, 3, H, W) float32 in OpenFace's normalised units, channels **R, G, B**.
Semantics copied from ``CNN::Inference`` (``openface_mtcnn_spec.md`` §4):

* convolution: im2col with columns ordered (input map, kernel x, kernel y) and a constant-1 column
  so the bias is added inside one float32 GEMM, as OpenFace's ``sgemm`` call does;
* PReLU: ``x`` where ``x >= 0``, else ``slope * x``;
* max-pool: output size ``round_half_away((in - k) / s) + 1``, windows clipped at the edges;
* fully connected: on 4-D input with as many maps as inputs (PNet's last layer) a 1x1 convolution
  at every pixel; otherwise each map flattened transposed (channel, x, y) before ``W @ x + b``.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .weights import FC, Conv, Layer, MaxPool, NetSpec, PReLU


def conv2d(x: np.ndarray, layer: Conv) -> np.ndarray:
    """Valid stride-1 cross-correlation of (N, C, H, W) float32 as im2col + one float32 GEMM.

    The im2col rows are ordered (input map, kernel x, kernel y) with a last row of ones, and the
    weight matrix carries the bias in its last column, as in OpenFace's ``convolution_direct_blas``.
    """
    n_out, n_in, kh, kw = layer.weight.shape
    n, _, h, w = x.shape
    oh, ow = h - kh + 1, w - kw + 1
    k = n_in * kh * kw
    cols = np.empty((k + 1, n, oh, ow), np.float32)
    windows = sliding_window_view(x, (kh, kw), axis=(2, 3))  # (N, C, oh, ow, kh, kw)
    cols[:k].reshape(n_in, kw, kh, n, oh, ow)[...] = windows.transpose(1, 5, 4, 0, 2, 3)
    cols[k] = 1.0
    weights = np.empty((n_out, k + 1), np.float32)
    weights[:, :k] = layer.weight.transpose(0, 1, 3, 2).reshape(n_out, k)
    weights[:, k] = layer.bias
    out = weights @ cols.reshape(k + 1, n * oh * ow)
    return np.ascontiguousarray(out.reshape(n_out, n, oh, ow).transpose(1, 0, 2, 3))


def prelu(x: np.ndarray, layer: PReLU) -> np.ndarray:
    """PReLU with one slope per channel (axis 1) of a map batch or per neuron of a vector batch.

    ``x if x >= 0 else a * x`` is computed exactly as ``max(x, a * x)`` for slopes ``a <= 1`` and
    ``min(x, a * x)`` for ``a > 1`` (two vectorised passes instead of a masked select).
    """
    shape = (1, -1) + (1,) * (x.ndim - 2)
    out = x * layer.slopes.reshape(shape)
    np.maximum(x, out, out=out)
    steep = np.flatnonzero(layer.slopes > 1)
    if len(steep):
        out[:, steep] = np.minimum(x[:, steep], x[:, steep] * layer.slopes[steep].reshape(shape))
    return out


def pool_output_size(size: int, kernel: int, stride: int) -> int:
    """OpenFace's max-pool output size: ``round((size - kernel) / stride) + 1``, half away from 0."""
    ratio = (size - kernel) / stride
    return int(np.floor(abs(ratio) + 0.5) * np.sign(ratio)) + 1


def max_pool(x: np.ndarray, layer: MaxPool) -> np.ndarray:
    """Max-pool (N, C, H, W) without padding; windows past the right/bottom edge are clipped."""
    n, c, h, w = x.shape
    ky, kx, sy, sx = layer.kernel_y, layer.kernel_x, layer.stride_y, layer.stride_x
    oh, ow = pool_output_size(h, ky, sy), pool_output_size(w, kx, sx)
    padded = np.full((n, c, max((oh - 1) * sy + ky, h), max((ow - 1) * sx + kx, w)), -np.inf, np.float32)
    padded[:, :, :h, :w] = x  # -inf never wins a max: same as clipping the window
    out = padded[:, :, : oh * sy : sy, : ow * sx : sx].copy()
    for dy in range(ky):
        for dx in range(kx):
            if dy or dx:
                np.maximum(out, padded[:, :, dy : dy + oh * sy : sy, dx : dx + ow * sx : sx], out=out)
    return out


def fc_input(x: np.ndarray) -> np.ndarray:
    """Flatten (N, C, H, W) maps in OpenFace's order (channel, x, y) to (N, C*W*H)."""
    return np.ascontiguousarray(x.transpose(0, 1, 3, 2)).reshape(x.shape[0], -1)


def fully_connected(x: np.ndarray, layer: FC) -> np.ndarray:
    """OpenFace's FC layer on a map batch (N, C, H, W) or a vector batch (N, D)."""
    n_out, n_in = layer.weight.shape
    if x.ndim == 4 and x.shape[1] == n_in:  # PNet: a 1x1 convolution at every pixel
        n, _, h, w = x.shape
        flat = x.transpose(0, 2, 3, 1).reshape(-1, n_in) @ layer.weight.T + layer.bias
        return np.ascontiguousarray(flat.reshape(n, h, w, n_out).transpose(0, 3, 1, 2))
    vectors = fc_input(x) if x.ndim == 4 else x
    return vectors @ layer.weight.T + layer.bias


def apply_layer(x: np.ndarray, layer: Layer) -> np.ndarray:
    """Run one layer on a batch."""
    if isinstance(layer, Conv):
        return conv2d(x, layer)
    if isinstance(layer, PReLU):
        return prelu(x, layer)
    if isinstance(layer, MaxPool):
        return max_pool(x, layer)
    if isinstance(layer, FC):
        return fully_connected(x, layer)
    return (1.0 / (1.0 + np.exp(-x))).astype(np.float32)


def forward(spec: NetSpec, x: np.ndarray) -> np.ndarray:
    """Run a whole net on a float32 batch (N, 3, H, W) and return its last layer's output."""
    for layer in spec.layers:
        x = apply_layer(x, layer)
    return x


def forward_layers(spec: NetSpec, x: np.ndarray) -> dict[str, np.ndarray]:
    """Run a net and return every layer's output keyed like the C++ dumps (``l00_conv``, ...).

    The input is included as ``in``; the flattened input of the first FC layer of RNet/ONet as
    ``lNN_fcin``.
    """
    outputs = {"in": x}
    for key, layer in zip(spec.layer_keys(), spec.layers, strict=True):
        if isinstance(layer, FC) and x.ndim == 4 and x.shape[1] != layer.weight.shape[1]:
            outputs[key.replace("_fc", "_fcin")] = fc_input(x)
        x = apply_layer(x, layer)
        outputs[key] = x
    return outputs
