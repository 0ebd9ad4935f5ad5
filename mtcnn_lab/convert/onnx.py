"""Export PNet, RNet and ONet to ONNX, in FP32 or FP16.

The graphs come from :class:`~mtcnn_lab.nets.torch.OpenFaceNet` through PyTorch's TorchScript
exporter (``torch.onnx.export(..., dynamo=False)``): it maps ``nn.PReLU`` straight onto ONNX's
native ``PRelu`` node (checked by the tests), works offline without ``onnxscript`` (which the
dynamo exporter needs), and writes the same bytes every time for the same weights. Each model has:

* one input ``input``: (N, 3, H, W) float32 R, G, B normalised as ``(v - 127.5) * 0.0078125``,
  with a dynamic batch ``N`` and, for PNet only, dynamic ``H`` and ``W`` (RNet 24x24, ONet 48x48);
* one output ``output``: the raw last layer, PNet (N, 6, h, w), RNet (N, 6), ONet (N, 16), in
  OpenFace's order (logit non-face, logit face, dx1, dy1, dx2, dy2, ONet: 5 landmark x, 5 y).

``taps=True`` builds a variant whose outputs are every layer's output instead, named like
:func:`mtcnn_lab.nets.reference.forward_layers` (``l00_conv``, ``l01_prelu``, ... plus ``lNN_fcin`` for
the flattened input of RNet's and ONet's first FC layer), for layer-by-layer comparisons.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

from mtcnn_lab.errors import ConversionError, OutputExists
from mtcnn_lab.files import write_atomic
from mtcnn_lab.weights.netspec import NetSpec, WeightSet

MIN_OPSET = 17
INPUT_NAME = "input"
OUTPUT_NAME = "output"
INPUT_SIZES = {"pnet": 12, "rnet": 24, "onet": 48}
OUTPUT_DESCRIPTION = {
    "pnet": "(N, 6, h, w): logit non-face, logit face, dx1, dy1, dx2, dy2 per 12x12 cell (stride 2)",
    "rnet": "(N, 6): logit non-face, logit face, dx1, dy1, dx2, dy2",
    "onet": "(N, 16): logit non-face, logit face, dx1, dy1, dx2, dy2, landmarks x1..x5, y1..y5",
}
INPUT_DESCRIPTION = "(N, 3, H, W) float32, channels R, G, B, values (v - 127.5) * 0.0078125"


def require_onnx():
    """The onnx module, or ConversionError saying how to install it."""
    try:
        import onnx
    except ImportError:
        raise ConversionError("the ONNX export needs the onnx package: pip install 'mtcnn-lab[onnx]'") from None
    return onnx


def _tap_names(spec: NetSpec) -> list[str]:
    """The taps model's output names, one per OpenFace layer plus ``lNN_fcin`` before the first FC."""
    from mtcnn_lab.nets.torch import build_layers

    return list(build_layers(spec))


def _dynamic_axes(spec: NetSpec, names: list[str], ranks: list[int]) -> dict[str, dict[int, str]]:
    """Dynamic batch everywhere; for PNet also the height and width of the input and of every map."""
    pnet = spec.name == "pnet"
    axes = {INPUT_NAME: {0: "batch", 2: "height", 3: "width"} if pnet else {0: "batch"}}
    for name, rank in zip(names, ranks, strict=True):
        if pnet and rank == 4:
            suffix = "" if name == OUTPUT_NAME else f"_{name}"
            axes[name] = {0: "batch", 2: f"out_height{suffix}", 3: f"out_width{suffix}"}
        else:
            axes[name] = {0: "batch"}
    return axes


def _torch_export(module, example, output_names: list[str], dynamic_axes: dict, opset: int) -> bytes:
    import torch

    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
        warnings.filterwarnings("ignore", message="The feature will be removed", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        torch.onnx.export(module, (example,), buffer, dynamo=False, opset_version=opset,
                          input_names=[INPUT_NAME], output_names=output_names, dynamic_axes=dynamic_axes,
                          do_constant_folding=True, export_params=True)
    return buffer.getvalue()


def _identity_taps(graph) -> None:
    """Make every graph output the output of its own ``Identity`` node.

    The layer outputs of a taps model are also the inputs of the next layer; giving each output a
    separate Identity keeps the layer-to-layer tensors internal, which FP16 conversion needs (it
    re-types graph outputs with Casts and would otherwise feed FP32 into the next FP16 layer).
    """
    from onnx import helper

    outputs = {o.name for o in graph.output}
    renamed = {name: f"{name}__value" for name in outputs}
    for node in graph.node:
        node.input[:] = [renamed.get(n, n) for n in node.input]
        node.output[:] = [renamed.get(n, n) for n in node.output]
    graph.node.extend(helper.make_node("Identity", [renamed[o.name]], [o.name], name=f"tap_{o.name}")
                      for o in graph.output)


def onnx_model_bytes(spec: NetSpec, opset: int = MIN_OPSET, taps: bool = False) -> bytes:
    """Serialised ONNX model of one net (see the module docstring); the same bytes for the same weights.

    ``opset`` must be at least 17 (and at most what the installed PyTorch exporter supports).
    """
    onnx = require_onnx()
    try:
        import torch
        from torch import nn
    except ImportError:
        raise ConversionError("exporting to ONNX needs PyTorch (the CPU build is enough): pip install torch; "
                              "or run ONNX files exported elsewhere (OnnxBackend(model_dir=...))") from None

    from mtcnn_lab.nets.torch import OpenFaceNet

    if spec.name not in INPUT_SIZES:
        raise ConversionError(f"unknown net {spec.name!r}; expected pnet, rnet or onet")
    if not isinstance(opset, int) or opset < MIN_OPSET:
        raise ConversionError(f"opset must be an integer >= {MIN_OPSET}, not {opset!r}")
    net = OpenFaceNet(spec)
    size = INPUT_SIZES[spec.name]
    example = torch.zeros(1, 3, size, size)

    if taps:
        class Taps(nn.Module):
            def __init__(self, layers: nn.Sequential):
                super().__init__()
                self.layers = layers

            def forward(self, x):
                outputs = []
                for layer in self.layers:
                    x = layer(x)
                    outputs.append(x)
                return tuple(outputs)

        module, names = Taps(net), _tap_names(spec)
        with torch.no_grad():
            ranks = [t.dim() for t in module(example)]
    else:
        module, names = net, [OUTPUT_NAME]
        with torch.no_grad():
            ranks = [net(example).dim()]
    try:
        data = _torch_export(module, example, names, _dynamic_axes(spec, names, ranks), opset)
    except Exception as err:  # the exporter raises many types; all mean the same to the caller
        raise ConversionError(f"ONNX export of {spec.name} at opset {opset} failed: {err}") from err

    model = onnx.load_from_string(data)
    if taps:
        _identity_taps(model.graph)
    model.graph.name = f"{spec.name}_taps" if taps else spec.name
    model.doc_string = f"MTCNN {spec.name} with OpenFace 2.2 semantics, exported by mtcnn-lab"
    onnx.helper.set_model_props(model, {
        "mtcnn_lab.net": spec.name,
        "mtcnn_lab.input": INPUT_DESCRIPTION,
        "mtcnn_lab.output": "every layer's output" if taps else OUTPUT_DESCRIPTION[spec.name],
    })
    onnx.checker.check_model(model)
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
        for path in paths.values():
            if path.exists():
                raise OutputExists(f"{path}: already exists; pass --overwrite (overwrite=True) to replace it")
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
