"""OpenVINO graphs of the three nets, built straight from their NetSpecs with OpenVINO's own operations.

Convolution, PRelu, MaxPool with ceil rounding (OpenFace's pooled size for stride 2), the (channel, x, y)
flatten before the first FC layer, MatMul: neither torch nor an ONNX export is needed. Input ``input``
(N, 3, H, W) float32 R, G, B normalised as the cascade feeds it; output ``output``, the raw last layer.
"""

from __future__ import annotations

import signal
import sys
import threading
from types import ModuleType

import numpy as np

from mtcnn_lab.errors import BackendUnavailable
from mtcnn_lab.weights.netspec import CROP_SIZES, FC, Conv, MaxPool, NetSpec, PReLU


def import_openvino() -> tuple[ModuleType, ModuleType]:
    """``(openvino, opset13)``, or BackendUnavailable in one line naming the extra to install.

    ``import openvino`` starts a process of OpenVINO's usage statistics (unless the user opted out, see
    README), which would print a traceback of its own on a Ctrl-C; it is imported with SIGINT ignored, so that
    process ignores it too (a Ctrl-C during the import itself is lost)."""
    quiet = threading.current_thread() is threading.main_thread() and "openvino" not in sys.modules
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if quiet else None
    try:
        import openvino
        from openvino import opset13
    except ImportError:
        raise BackendUnavailable("the OpenVINO backend needs openvino: pip install 'mtcnn-lab[openvino]'") from None
    finally:
        if quiet:
            signal.signal(signal.SIGINT, previous)
    return openvino, opset13


def openvino_model(spec: NetSpec, taps: bool = False) -> object:
    """An ``openvino.Model`` computing ``spec`` with OpenFace's semantics; input ``input``
    (N, 3, H, W) float32 with dynamic N (and H, W for PNet), output ``output``.

    ``taps=True``: one output per layer instead, named like the reference's layer outputs
    (``l00_conv`` ..., and ``lNN_fcin`` for the flatten before the first FC layer)."""
    ov, ops = import_openvino()
    side = CROP_SIZES.get(spec.name)
    shape = [-1, 3, -1, -1] if side is None else [-1, 3, side, side]
    data = ops.parameter(ov.PartialShape(shape), np.float32, name="input")
    x, maps, outputs = data, True, {}
    for key, layer in zip(spec.layer_keys(), spec.layers, strict=True):
        if isinstance(layer, Conv):
            x = ops.convolution(x, ops.constant(layer.weight), [1, 1], [0, 0], [0, 0], [1, 1])
            x = ops.add(x, ops.constant(layer.bias.reshape(1, -1, 1, 1)))
        elif isinstance(layer, PReLU):
            x = ops.prelu(x, ops.constant(layer.slopes))
        elif isinstance(layer, MaxPool):
            if layer.stride_x != 2 or layer.stride_y != 2:
                raise NotImplementedError("only stride-2 max-pooling maps onto ceil rounding exactly")
            from openvino import opset1

            x = opset1.max_pool(x, [layer.stride_y, layer.stride_x], [0, 0], [0, 0],
                                [layer.kernel_y, layer.kernel_x], rounding_type="ceil")
        elif isinstance(layer, FC):
            n_out, n_in = layer.weight.shape
            if maps and x.get_output_partial_shape(0)[1].get_length() == n_in:  # PNet: 1x1 convolution
                x = ops.convolution(x, ops.constant(layer.weight.reshape(n_out, n_in, 1, 1)),
                                    [1, 1], [0, 0], [0, 0], [1, 1])
                x = ops.add(x, ops.constant(layer.bias.reshape(1, -1, 1, 1)))
                outputs[key] = x
                continue
            if maps:  # OpenFace's flatten: each map transposed, order (channel, x, y)
                x = ops.transpose(x, ops.constant(np.array([0, 1, 3, 2], np.int64)))
                x = ops.reshape(x, ops.constant(np.array([0, -1], np.int64)), special_zero=True)
                outputs[key.replace("_fc", "_fcin")] = x
                maps = False
            x = ops.add(ops.matmul(x, ops.constant(layer.weight), False, True), ops.constant(layer.bias))
        else:
            x = ops.sigmoid(x)
        outputs[key] = x
    if taps:
        for key, node in outputs.items():
            node.output(0).get_tensor().set_names({key})
        return ov.Model([node.output(0) for node in outputs.values()], [data], f"{spec.name}_taps")
    x.output(0).get_tensor().set_names({"output"})
    return ov.Model([x], [data], spec.name)
