"""The reference CNN: numpy with OpenFace's exact C++ semantics, able to return every layer.

Inputs are batches (N, 3, H, W) float32 in OpenFace's normalised units, channels **R, G, B**.
Semantics copied from ``CNN::Inference`` (``docs/openface_mtcnn.md`` §4):

* convolution: im2col with columns ordered (input map, kernel x, kernel y) and a constant-1 column
  so the bias is added inside one float32 GEMM, as OpenFace's ``sgemm`` call does;
* PReLU: ``x`` where ``x >= 0``, else ``slope * x``;
* max-pool: output size ``round_half_away((in - k) / s) + 1``, windows clipped at the edges;
* fully connected: on 4-D input with as many maps as inputs (PNet's last layer) a 1x1 convolution
  at every pixel; otherwise each map flattened transposed (channel, x, y) before ``W @ x + b``.

Internally the layer functions work on channel-major batches (C, N, H, W) (vectors: (D, N)): the
GEMM of a convolution produces that layout directly, so no transposes are needed between layers.
:func:`apply_layer`, :func:`forward` and :func:`forward_layers` take and return the usual
(N, C, H, W) / (N, D) batches.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from mtcnn_lab.weights.netspec import FC, Conv, Layer, MaxPool, NetSpec, PReLU


def conv2d(x: np.ndarray, layer: Conv) -> np.ndarray:
    """Valid stride-1 cross-correlation of (C, N, H, W) float32 as im2col + one float32 GEMM.

    The im2col rows are ordered (input map, kernel x, kernel y) with a last row of ones, and the
    weight matrix carries the bias in its last column, as in OpenFace's ``convolution_direct_blas``.
    Returns (n_out, N, oh, ow).
    """
    n_out, n_in, kh, kw = layer.weight.shape
    _, n, h, w = x.shape
    oh, ow = h - kh + 1, w - kw + 1
    k = n_in * kh * kw
    cols = np.empty((k + 1, n, oh, ow), np.float32)
    windows = sliding_window_view(x, (kh, kw), axis=(2, 3))  # (C, N, oh, ow, kh, kw)
    cols[:k].reshape(n_in, kw, kh, n, oh, ow)[...] = windows.transpose(0, 5, 4, 1, 2, 3)
    cols[k] = 1.0
    weights = np.empty((n_out, k + 1), np.float32)
    weights[:, :k] = layer.weight.transpose(0, 1, 3, 2).reshape(n_out, k)
    weights[:, k] = layer.bias
    return (weights @ cols.reshape(k + 1, n * oh * ow)).reshape(n_out, n, oh, ow)


def prelu(x: np.ndarray, layer: PReLU) -> np.ndarray:
    """PReLU with one slope per channel / neuron (axis 0 of a channel-major batch).

    ``x if x >= 0 else a * x`` is computed exactly as ``max(x, a * x)`` for slopes ``a <= 1`` and
    ``min(x, a * x)`` for ``a > 1`` (two vectorised passes instead of a masked select).
    """
    slopes = layer.slopes.reshape((-1,) + (1,) * (x.ndim - 1))
    out = x * slopes
    np.maximum(x, out, out=out)
    steep = np.flatnonzero(layer.slopes > 1)
    if len(steep):
        out[steep] = np.minimum(x[steep], x[steep] * slopes[steep])
    return out


def pool_output_size(size: int, kernel: int, stride: int) -> int:
    """OpenFace's max-pool output size: ``round((size - kernel) / stride) + 1``, half away from 0."""
    ratio = (size - kernel) / stride
    return int(np.floor(abs(ratio) + 0.5) * np.sign(ratio)) + 1


def max_pool(x: np.ndarray, layer: MaxPool) -> np.ndarray:
    """Max-pool (C, N, H, W) without padding; windows past the right/bottom edge are clipped."""
    c, n, h, w = x.shape
    ky, kx, sy, sx = layer.kernel_y, layer.kernel_x, layer.stride_y, layer.stride_x
    oh, ow = pool_output_size(h, ky, sy), pool_output_size(w, kx, sx)
    need_h, need_w = (oh - 1) * sy + ky, (ow - 1) * sx + kx
    if need_h > h or need_w > w:  # -inf never wins a max: same as clipping the window
        padded = np.full((c, n, max(need_h, h), max(need_w, w)), -np.inf, np.float32)
        padded[:, :, :h, :w] = x
        x = padded
    # separable: max over the kernel's columns, then over its rows
    cols = x[:, :, :, : ow * sx : sx].copy()
    for dx in range(1, kx):
        np.maximum(cols, x[:, :, :, dx : dx + ow * sx : sx], out=cols)
    out = cols[:, :, : oh * sy : sy].copy()
    for dy in range(1, ky):
        np.maximum(out, cols[:, :, dy : dy + oh * sy : sy], out=out)
    return out


def fc_input(x: np.ndarray) -> np.ndarray:
    """Flatten channel-major maps (C, N, H, W) in OpenFace's order (channel, x, y): (C*W*H, N)."""
    c, n, h, w = x.shape
    return np.ascontiguousarray(x.transpose(0, 3, 2, 1)).reshape(c * w * h, n)


def fully_connected(x: np.ndarray, layer: FC) -> np.ndarray:
    """OpenFace's FC layer on channel-major maps (C, N, H, W) or vectors (D, N).

    With as many maps as inputs (PNet's last layer) it is a 1x1 convolution at every pixel and
    returns (n_out, N, H, W); otherwise the maps are flattened by :func:`fc_input` and the result is
    (n_out, N).
    """
    n_out, n_in = layer.weight.shape
    if x.ndim == 4 and x.shape[0] == n_in:
        _, n, h, w = x.shape
        out = layer.weight @ x.reshape(n_in, -1) + layer.bias[:, None]
        return out.reshape(n_out, n, h, w)
    vectors = fc_input(x) if x.ndim == 4 else x
    return layer.weight @ vectors + layer.bias[:, None]


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Element-wise logistic function in float32."""
    return (1.0 / (1.0 + np.exp(-x))).astype(np.float32)


def _apply(x: np.ndarray, layer: Layer) -> np.ndarray:
    if isinstance(layer, Conv):
        return conv2d(x, layer)
    if isinstance(layer, PReLU):
        return prelu(x, layer)
    if isinstance(layer, MaxPool):
        return max_pool(x, layer)
    if isinstance(layer, FC):
        return fully_connected(x, layer)
    return sigmoid(x)


def _is_flattening_fc(x: np.ndarray, layer: Layer) -> bool:
    """True for the first FC layer of RNet/ONet (maps in, fewer maps than inputs)."""
    return isinstance(layer, FC) and x.ndim == 4 and x.shape[0] != layer.weight.shape[1]


def apply_layer(x: np.ndarray, layer: Layer) -> np.ndarray:
    """Run one layer on a batch (N, C, H, W) or (N, D); returns the same layout."""
    return _apply(x.swapaxes(0, 1), layer).swapaxes(0, 1)


def _rounded(x: np.ndarray, dtype: np.dtype | None) -> np.ndarray:
    return x if dtype is None else x.astype(dtype).astype(np.float32)


def forward(spec: NetSpec, x: np.ndarray, activation_dtype: np.dtype | None = None) -> np.ndarray:
    """Run a whole net on a float32 batch (N, 3, H, W) and return its last layer's output.

    ``activation_dtype`` (e.g. ``np.float16``) rounds the input and every layer's output to that
    type, keeping float32 arithmetic inside the layers: an emulation of FP16 runtimes.
    """
    x = _rounded(x, activation_dtype).swapaxes(0, 1)
    for layer in spec.layers:
        x = _rounded(_apply(x, layer), activation_dtype)
    return np.ascontiguousarray(x.swapaxes(0, 1))


def forward_layers(spec: NetSpec, x: np.ndarray, activation_dtype: np.dtype | None = None) -> dict[str, np.ndarray]:
    """Run a net on (N, 3, H, W) and return every layer's output keyed like the C++ dumps.

    Keys are ``lNN_<kind>`` (batch-first layout), plus ``in`` for the input and ``lNN_fcin`` for
    the flattened input of the first FC layer of RNet/ONet. ``activation_dtype`` as in :func:`forward`.
    """
    x = _rounded(x, activation_dtype)
    outputs = {"in": x}
    x = x.swapaxes(0, 1)
    for key, layer in zip(spec.layer_keys(), spec.layers, strict=True):
        if _is_flattening_fc(x, layer):
            outputs[key.replace("_fc", "_fcin")] = fc_input(x).T
        x = _rounded(_apply(x, layer), activation_dtype)
        outputs[key] = x.swapaxes(0, 1)
    return outputs
