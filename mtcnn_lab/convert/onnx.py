"""Export PNet, RNet and ONet to ONNX, in FP32 or FP16.

The graphs are built straight from the :class:`~mtcnn_lab.weights.netspec.NetSpec` with ``onnx.helper``, as
the OpenVINO graphs are (:mod:`mtcnn_lab.nets.openvino`): native ``Conv``, ``PRelu``, ``MaxPool`` (ceil
rounding), ``Transpose`` + ``Flatten`` (OpenFace's flatten order) and ``Gemm`` nodes, and an ``Identity`` node
naming each graph output; no torch and no tracing, the same bytes every time for the same weights. Each model has:

* one input ``input``: (N, 3, H, W) float32 R, G, B normalised as ``(v - 127.5) * 0.0078125``,
  with a dynamic batch ``N`` and, for PNet only, dynamic ``H`` and ``W`` (RNet 24x24, ONet 48x48);
* one output ``output``: the raw last layer, PNet (N, 6, h, w), RNet (N, 6), ONet (N, 16), in
  OpenFace's order (logit non-face, logit face, dx1, dy1, dx2, dy2, ONet: 5 landmark x, 5 y).

``taps=True`` builds a variant whose outputs are every layer's output instead, named like
:func:`mtcnn_lab.nets.reference.forward_layers` (``l00_conv``, ``l01_prelu``, ... plus ``lNN_fcin`` for
the flattened input of RNet's and ONet's first FC layer), for layer-by-layer comparisons.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from types import ModuleType

import numpy as np

from mtcnn_lab.errors import ConversionError, OutputExists
from mtcnn_lab.files import refuse_existing, write_atomic
from mtcnn_lab.weights.netspec import (
    FC,
    INPUT_DESCRIPTION,
    MIN_INPUT_SIDES,
    OUTPUT_DESCRIPTION,
    Conv,
    MaxPool,
    NetSpec,
    PReLU,
    WeightSet,
)

MIN_OPSET = 17
INPUT_NAME = "input"
OUTPUT_NAME = "output"


def require_onnx() -> ModuleType:
    """The onnx module, or ConversionError saying how to install it."""
    try:
        import onnx
    except ImportError:
        raise ConversionError("the ONNX export needs the onnx package: pip install 'mtcnn-lab[onnx]'") from None
    return onnx


def _graph_nodes(spec: NetSpec, helper, numpy_helper) -> tuple[list, list, dict[str, tuple[str, int]]]:
    """The nodes and initializers computing ``spec`` with OpenFace's semantics, and each layer's output tensor
    and rank by tap name (``l00_conv`` ..., ``lNN_fcin`` for the flatten before the first FC layer): Conv with bias,
    PRelu (one slope per channel), MaxPool with ceil rounding (OpenFace's pooled size for stride 2), the
    (channel, x, y) flatten, Gemm; PNet's FC layer is a 1x1 convolution over the maps."""
    nodes, weights, taps = [], [], {}
    x, maps, channels = INPUT_NAME, True, 3

    def const(name: str, value: np.ndarray) -> str:
        weights.append(numpy_helper.from_array(np.ascontiguousarray(value, np.float32), name))
        return name

    for key, layer in zip(spec.layer_keys(), spec.layers, strict=True):
        out = f"{key}__value"
        if isinstance(layer, Conv):
            nodes.append(helper.make_node("Conv", [x, const(f"{key}.weight", layer.weight),
                                                   const(f"{key}.bias", layer.bias)], [out], name=key))
            channels = layer.weight.shape[0]
        elif isinstance(layer, PReLU):
            slopes = layer.slopes.reshape(-1, 1, 1) if maps else layer.slopes
            nodes.append(helper.make_node("PRelu", [x, const(f"{key}.slopes", slopes)], [out], name=key))
        elif isinstance(layer, MaxPool):
            if layer.stride_x != 2 or layer.stride_y != 2:
                raise ConversionError("only stride-2 max-pooling maps onto ceil rounding exactly")
            nodes.append(helper.make_node("MaxPool", [x], [out], name=key, ceil_mode=1,
                                          kernel_shape=[layer.kernel_y, layer.kernel_x],
                                          strides=[layer.stride_y, layer.stride_x]))
        elif isinstance(layer, FC):
            n_out, n_in = layer.weight.shape
            if maps and channels == n_in:  # PNet's FC layer: a 1x1 convolution over the maps
                kernel = const(f"{key}.weight", layer.weight.reshape(n_out, n_in, 1, 1))
                nodes.append(helper.make_node("Conv", [x, kernel, const(f"{key}.bias", layer.bias)], [out], name=key))
            else:
                if maps:  # OpenFace's flatten: each map transposed, order (channel, x, y)
                    fcin = key.replace("_fc", "_fcin")
                    nodes.append(helper.make_node("Transpose", [x], [f"{fcin}__hw"], name=f"{fcin}_transpose",
                                                  perm=[0, 1, 3, 2]))
                    nodes.append(helper.make_node("Flatten", [f"{fcin}__hw"], [f"{fcin}__value"], name=fcin, axis=1))
                    taps[fcin], x, maps = (f"{fcin}__value", 2), f"{fcin}__value", False
                nodes.append(helper.make_node("Gemm", [x, const(f"{key}.weight", layer.weight),
                                                       const(f"{key}.bias", layer.bias)], [out], name=key, transB=1))
        else:
            nodes.append(helper.make_node("Sigmoid", [x], [out], name=key))
        taps[key], x = (out, 4 if maps else 2), out
    return nodes, weights, taps


def _graph(spec: NetSpec, taps: bool):
    """The ONNX graph of one net (see the module docstring) with named dynamic dimensions: the batch, and
    for PNet the input's and the maps' height and width."""
    from onnx import TensorProto, helper, numpy_helper

    nodes, weights, layer_outputs = _graph_nodes(spec, helper, numpy_helper)
    pnet = spec.name == "pnet"
    side = MIN_INPUT_SIDES[spec.name]
    inputs = [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT,
                                            ["batch", 3, "height", "width"] if pnet else ["batch", 3, side, side])]
    wanted = dict(layer_outputs) if taps else {OUTPUT_NAME: list(layer_outputs.values())[-1]}
    outputs = []
    for name, (value, rank) in wanted.items():
        nodes.append(helper.make_node("Identity", [value], [name], name=f"output_{name}"))
        suffix = "" if name == OUTPUT_NAME else f"_{name}"
        dims = ["batch", None, f"out_height{suffix}", f"out_width{suffix}"] if rank == 4 and pnet else \
            ["batch"] + [None] * (rank - 1)
        outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, dims))
    return helper.make_graph(nodes, f"{spec.name}_taps" if taps else spec.name, inputs, outputs, weights)


def onnx_model_bytes(spec: NetSpec, opset: int = MIN_OPSET, taps: bool = False) -> bytes:
    """Serialised ONNX model of one net (see the module docstring); the same bytes for the same weights.

    Built straight from the NetSpec with ``onnx.helper`` (no torch, no tracing). ``opset`` must be at least 17.
    """
    onnx = require_onnx()
    if spec.name not in MIN_INPUT_SIDES:
        raise ConversionError(f"unknown net {spec.name!r}; expected pnet, rnet or onet")
    if not isinstance(opset, int) or opset < MIN_OPSET:
        raise ConversionError(f"opset must be an integer >= {MIN_OPSET}, not {opset!r}")
    model = onnx.helper.make_model(_graph(spec, taps), producer_name="mtcnn-lab",
                                   opset_imports=[onnx.helper.make_opsetid("", opset)])
    model.doc_string = f"MTCNN {spec.name} with OpenFace 2.2 semantics, exported by mtcnn-lab"
    onnx.helper.set_model_props(model, {
        "mtcnn_lab.net": spec.name,
        "mtcnn_lab.input": INPUT_DESCRIPTION,
        "mtcnn_lab.output": "every layer's output" if taps else OUTPUT_DESCRIPTION[spec.name],
    })
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as err:
        raise ConversionError(f"the ONNX graph of {spec.name} is invalid: {str(err).splitlines()[0]}") from None
    return model.SerializeToString()


def fp16_model(model_bytes: bytes) -> bytes:
    """The same model with FP16 weights and arithmetic, keeping FP32 inputs and outputs.

    Uses onnxconverter-common's ``convert_float_to_float16(keep_io_types=True)``: a ``Cast`` after
    the input and before every output. Weights of magnitude below 1e-7 (a few FC weights, under
    FP16's smallest subnormals anyway) become +-1e-7, a change far below FP16's rounding of the
    activations. On CPU, onnxruntime runs any node that has no FP16 kernel there in FP32 between
    Casts it inserts itself, so the model always runs; the speed-up is for GPUs.
    """
    onnx = require_onnx()
    try:
        from onnxconverter_common import float16
    except ImportError:
        raise ConversionError("FP16 conversion needs onnxconverter-common: pip install 'mtcnn-lab[onnx]'") from None
    model = onnx.load_from_string(model_bytes)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"the float32 number .* will be truncated to")
        converted = float16.convert_float_to_float16(model, keep_io_types=True)
    onnx.checker.check_model(converted)
    return converted.SerializeToString()


def model_file_name(net: str, fp16: bool = False) -> str:
    """``pnet.onnx`` / ``pnet_fp16.onnx`` etc."""
    return f"{net}{'_fp16' if fp16 else ''}.onnx"


def export_onnx(weights: WeightSet, outdir: str | Path, fp16: bool = False, opset: int = MIN_OPSET,
                overwrite: bool = False) -> dict[str, Path]:
    """Write ``pnet.onnx``, ``rnet.onnx`` and ``onet.onnx`` (``*_fp16.onnx`` with ``fp16``) to ``outdir``.

    Each file is written atomically. Unless ``overwrite`` is set, an existing file raises
    :class:`OutputExists` naming it, before anything is written. Returns ``{net: path}``.
    """
    out = Path(outdir)
    paths = {net: out / model_file_name(net, fp16) for net in weights.nets()}
    if not overwrite:
        refuse_existing(paths.values())
    models = {}
    for net, spec in weights.nets().items():
        data = onnx_model_bytes(spec, opset=opset)
        models[net] = fp16_model(data) if fp16 else data
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConversionError(f"{out}: cannot create the output folder ({err.strerror})") from None
    for net, path in paths.items():
        try:
            write_atomic(path, models[net], overwrite)
        except OSError as err:
            if isinstance(err, OutputExists):
                raise
            raise ConversionError(f"{path}: cannot write ({err.strerror})") from None
    return paths
