"""Core ML export of PNet, RNet and ONet (``.mlpackage`` ML programs, FP32 or FP16).

Each net is built as a MIL program straight from its NetSpec with coremltools' MIL builder
(:func:`mil_program`: no torch, no tracing) and converted with ``coremltools.convert(...,
convert_to="mlprogram")`` for macOS 13 / iOS 16 and later. The
models take one float32 input ``input`` (normalised R,G,B, as every backend) and give one float32
output ``output`` (the raw last layer); an FP16 model casts to float16 after the input and back to
float32 before the output, so callers see the same types for both precisions.

Input shapes:

* PNet takes batch-1 pyramid levels as an **enumerated** shape set: every distinct level size
  :func:`pnet_input_shapes` finds for the chosen frame sizes (33 for the default four). The Neural
  Engine compiles enumerated shapes ahead of time; ranged shapes would push PNet to the GPU/CPU.
  Core ML accepts at most :data:`MAX_ENUMERATED_SHAPES` (128) enumerated shapes (a limit Apple
  documents but coremltools does not check), so more raise :class:`ParameterError`: convert
  several model sets for disjoint groups of frame sizes instead.
* RNet and ONet take (N, 3, 24, 24) and (N, 3, 48, 48) with N ranged 1..``max_batch``.

Conversion needs only ``coremltools`` (``pip install 'mtcnn-lab[coreml]'``) and works on Linux;
running the models needs macOS (see :mod:`mtcnn_lab.backends.coreml`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import ModuleType

import numpy as np

from mtcnn_lab.checks import one_of, positive_int
from mtcnn_lab.errors import ConversionError, ParameterError
from mtcnn_lab.files import normalise_permissions, refuse_existing
from mtcnn_lab.params import CascadeParams, level_size, pyramid_scales
from mtcnn_lab.weights.netspec import (
    CROP_SIZES,
    FC,
    INPUT_DESCRIPTION,
    NET_NAMES,
    OUTPUT_DESCRIPTION,
    Conv,
    MaxPool,
    NetSpec,
    PReLU,
    WeightSet,
)

DEFAULT_FRAME_SIZES: tuple[tuple[int, int], ...] = ((1920, 1080), (1080, 1920), (1280, 720), (640, 480))
"""Frame sizes as (width, height) whose pyramid levels PNet models accept by default."""

COMPUTE_UNITS = ("ALL", "CPU_AND_NE", "CPU_AND_GPU", "CPU_ONLY")
"""Names of ``coremltools.ComputeUnit`` members a model may be loaded with."""

PRECISIONS = ("fp32", "fp16")

MAX_ENUMERATED_SHAPES = 128
"""Most enumerated input shapes Core ML supports for one input (Apple's documented limit)."""

DEPLOYMENT_TARGET = "macOS13"
"""``coremltools.target`` member the models are built for (ML program opset ``CoreML6``)."""

INPUT_NAME = "input"
OUTPUT_NAME = "output"
METADATA_PREFIX = "mtcnn_lab."


# --------------------------------------------------------------------------------------------
# names, shapes and parameters


def model_filename(net: str, precision: str) -> str:
    """``pnet.mlpackage`` (FP32) or ``pnet_fp16.mlpackage`` (FP16)."""
    return f"{net}{'_fp16' if precision == 'fp16' else ''}.mlpackage"


def _report_filename(precision: str) -> str:
    """``coreml_report.json`` (FP32) or ``coreml_report_fp16.json`` (FP16)."""
    return f"coreml_report{'_fp16' if precision == 'fp16' else ''}.json"


def _check_precision(precision: str) -> str:
    """``precision`` lower-cased if it is ``fp32`` or ``fp16``; :class:`ParameterError` otherwise."""
    return one_of(str(precision).lower(), PRECISIONS, "Core ML precision")


def check_compute_units(compute_units: str) -> str:
    """``compute_units`` upper-cased if it names a Core ML compute unit; :class:`ParameterError` otherwise."""
    return one_of(str(compute_units).upper(), COMPUTE_UNITS, "Core ML compute units")


def _check_frame_sizes(frame_sizes: Iterable[Sequence[int]]) -> list[tuple[int, int]]:
    sizes = []
    for size in frame_sizes:
        try:
            width, height = (int(v) for v in size)
        except (TypeError, ValueError):
            raise ParameterError(f"frame size {size!r} is not a (width, height) pair of integers") from None
        if width <= 0 or height <= 0:
            raise ParameterError(f"frame size {width}x{height} must be positive")
        sizes.append((width, height))
    return sizes


def pnet_input_shapes(frame_sizes: Iterable[Sequence[int]] = DEFAULT_FRAME_SIZES,
                      min_face: float = CascadeParams.min_face,
                      factor: float = CascadeParams.factor) -> list[tuple[int, int, int, int]]:
    """Every distinct PNet input ``(1, 3, h, w)`` of the pyramids of ``frame_sizes`` (width, height).

    The sizes come from :func:`~mtcnn_lab.cascade.pyramid.pyramid_scales` and
    :func:`~mtcnn_lab.cascade.pyramid.level_size`, so they are exactly what the cascade feeds PNet; they
    are sorted largest area first (the first is the models' default shape).
    """
    shapes = set()
    for width, height in _check_frame_sizes(frame_sizes):
        for scale in pyramid_scales(height, width, min_face, factor):
            h, w = level_size(height, width, scale)
            shapes.add((1, 3, h, w))
    return sorted(shapes, key=lambda s: (-s[2] * s[3], -s[2], -s[3]))


def net_digest(spec: NetSpec) -> str:
    """Hex SHA-256 of a net's layer kinds and parameter bytes: which weights a model was made from."""
    digest = hashlib.sha256()
    for key, value in sorted(spec.arrays().items()):
        digest.update(key.encode())
        digest.update(str(value.dtype).encode() + str(value.shape).encode())
        digest.update(value.tobytes())
    return digest.hexdigest()


def tree_bytes(path: Path) -> int:
    """Total size in bytes of a file or of every file below a folder (an ``.mlpackage``)."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


# --------------------------------------------------------------------------------------------
# coremltools


def import_coremltools() -> ModuleType:
    """``coremltools``, imported with its import-time chatter silenced (untested-torch warning and,
    off macOS, "Failed to load _MLModelProxy" lines); :class:`ConversionError` if not installed."""
    log = logging.getLogger("coremltools")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        import coremltools as ct
    except ImportError as err:
        raise ConversionError(
            f"Core ML conversion needs coremltools ({err}); install it with pip install 'mtcnn-lab[coreml]'"
        ) from None
    finally:
        log.setLevel(level)
    return ct


def _input_type(ct, net: str, shapes: list[tuple[int, int, int, int]], max_batch: int):
    if net == "pnet":
        shape = ct.EnumeratedShapes(shapes=[list(s) for s in shapes]) if len(shapes) > 1 else shapes[0]
    else:
        side = CROP_SIZES[net]
        batch = ct.RangeDim(lower_bound=1, upper_bound=max_batch, default=1) if max_batch > 1 else 1
        shape = (batch, 3, side, side)
    return ct.TensorType(name=INPUT_NAME, shape=shape, dtype=np.float32)


def mil_program(spec: NetSpec) -> object:
    """The net as a coremltools MIL program built straight from its NetSpec with the MIL builder (no torch,
    no tracing): ``conv`` (valid), ``prelu``, ``max_pool`` (valid, ceil mode: OpenFace's pooled size for
    stride 2), OpenFace's (channel, x, y) flatten as ``transpose`` + ``reshape``, ``linear``; PNet's FC layer
    as a 1x1 ``conv``. A PReLU after a fully connected layer runs on (N, C, 1, 1) maps (``expand_dims`` /
    ``squeeze``): coremltools allows a rank-2 PReLU only with equal slopes, and RNet's and ONet's differ. The
    input is ``input`` (batch-1 levels of any size for PNet, any batch of crops for RNet/ONet; the shapes a
    model accepts are set when converting), the output ``output``."""
    ct = import_coremltools()
    from coremltools.converters.mil import Builder as mb
    from coremltools.converters.mil.mil import get_new_symbol

    f32 = np.float32
    side = CROP_SIZES.get(spec.name)
    shape = (1, 3, get_new_symbol(), get_new_symbol()) if side is None else (get_new_symbol(), 3, side, side)
    last = len(spec.layers) - 1

    for layer in spec.layers:
        if isinstance(layer, MaxPool) and (layer.stride_x != 2 or layer.stride_y != 2):
            raise ConversionError(f"{spec.name}: only stride-2 max-pooling maps onto ceil rounding exactly")

    @mb.program(input_specs=[mb.TensorSpec(shape=shape)], opset_version=ct.target.iOS16)
    def program(input):  # noqa: A002 - the name becomes the model's input name
        x, maps, channels = input, True, 3
        for i, layer in enumerate(spec.layers):
            named = {"name": OUTPUT_NAME} if i == last else {}
            if isinstance(layer, Conv):
                x = mb.conv(x=x, weight=layer.weight.astype(f32), bias=layer.bias.astype(f32), pad_type="valid",
                            **named)
                channels = layer.weight.shape[0]
            elif isinstance(layer, PReLU) and maps:
                x = mb.prelu(x=x, alpha=layer.slopes.astype(f32), **named)
            elif isinstance(layer, PReLU):
                x = mb.expand_dims(x=x, axes=[2, 3])
                x = mb.squeeze(x=mb.prelu(x=x, alpha=layer.slopes.astype(f32)), axes=[2, 3], **named)
            elif isinstance(layer, MaxPool):
                x = mb.max_pool(x=x, kernel_sizes=[layer.kernel_y, layer.kernel_x],
                                strides=[layer.stride_y, layer.stride_x], pad_type="valid", ceil_mode=True, **named)
            elif isinstance(layer, FC) and maps and channels == layer.weight.shape[1]:  # PNet's: a 1x1 conv
                n_out, n_in = layer.weight.shape
                x = mb.conv(x=x, weight=layer.weight.reshape(n_out, n_in, 1, 1).astype(f32),
                            bias=layer.bias.astype(f32), pad_type="valid", **named)
            elif isinstance(layer, FC):
                if maps:
                    x = mb.reshape(x=mb.transpose(x=x, perm=[0, 1, 3, 2]), shape=[-1, layer.weight.shape[1]])
                    maps = False
                x = mb.linear(x=x, weight=layer.weight.astype(f32), bias=layer.bias.astype(f32), **named)
            else:
                raise ConversionError(f"{spec.name}: layer {type(layer).__name__} has no Core ML conversion")
        return x

    return program


def _convert_program(ct, program, net: str, shapes: list[tuple[int, int, int, int]], max_batch: int, precision: str,
                     compute_units: str):
    """``coremltools.convert`` of a MIL program to an ML program with the net's input shapes."""
    return ct.convert(
        program,
        source="milinternal",
        inputs=[_input_type(ct, net, shapes, max_batch)],
        outputs=[ct.TensorType(name=OUTPUT_NAME, dtype=np.float32)],
        convert_to="mlprogram",
        compute_precision=ct.precision.FLOAT16 if precision == "fp16" else ct.precision.FLOAT32,
        minimum_deployment_target=getattr(ct.target, DEPLOYMENT_TARGET),
        compute_units=getattr(ct.ComputeUnit, compute_units),
        skip_model_load=True,
    )


def _convert_net(spec: NetSpec, precision: str = "fp32", pnet_shapes: list[tuple[int, int, int, int]] | None = None,
                max_batch: int = 256, compute_units: str = "ALL", weights_name: str = ""):
    """One net as an in-memory ``coremltools.models.MLModel`` (not loaded: usable on any OS).

    Arguments as for :func:`convert_coreml`; ``pnet_shapes`` defaults to :func:`pnet_input_shapes`.
    """
    ct = import_coremltools()
    precision = _check_precision(precision)
    compute_units = check_compute_units(compute_units)
    net = spec.name
    if net not in NET_NAMES:
        raise ParameterError(f"unknown net {net!r}; expected one of {', '.join(NET_NAMES)}")
    shapes = pnet_shapes if pnet_shapes is not None else pnet_input_shapes()
    program = mil_program(spec)
    try:
        model = _convert_program(ct, program, net, shapes, max_batch, precision, compute_units)
    except (ValueError, RuntimeError, TypeError) as err:  # coremltools refusing the program or its inputs
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ConversionError(f"Core ML conversion of {net} failed: {first}") from None
    model.author = "mtcnn-lab"
    model.short_description = f"OpenFace 2.2 MTCNN {net} ({weights_name or 'unnamed'} weights, {precision})"
    batch_one = net == "pnet"  # PNet's programs take one pyramid level at a time (pnet_input_shapes)
    model.input_description[INPUT_NAME] = INPUT_DESCRIPTION.replace("(N,", "(1,") if batch_one else INPUT_DESCRIPTION
    model.output_description[OUTPUT_NAME] = (OUTPUT_DESCRIPTION[net].replace("(N,", "(1,") if batch_one
                                             else OUTPUT_DESCRIPTION[net])
    meta = model.user_defined_metadata
    meta[METADATA_PREFIX + "net"] = net
    meta[METADATA_PREFIX + "weights"] = weights_name
    meta[METADATA_PREFIX + "precision"] = precision
    meta[METADATA_PREFIX + "compute_units"] = compute_units
    meta[METADATA_PREFIX + "weights_sha256"] = net_digest(spec)
    meta[METADATA_PREFIX + "max_batch"] = str(max_batch)
    return model


# --------------------------------------------------------------------------------------------
# writing


def _checked_pnet_shapes(frame_sizes: list[tuple[int, int]], min_face: float,
                         factor: float) -> list[tuple[int, int, int, int]]:
    """PNet's enumerated input shapes for ``frame_sizes``; ParameterError when there are none or too many."""
    shapes = pnet_input_shapes(frame_sizes, min_face, factor)
    if not shapes:
        raise ParameterError(f"frame sizes {frame_sizes} are all too small for min_face={min_face}: PNet gets no input")
    if len(shapes) > MAX_ENUMERATED_SHAPES:
        raise ParameterError(
            f"{len(frame_sizes)} frame sizes give {len(shapes)} PNet input shapes, more than the "
            f"{MAX_ENUMERATED_SHAPES} Core ML allows; convert fewer frame sizes per model set"
        )
    return shapes


def _staging_folder(outdir: Path) -> Path:
    """A new temporary folder inside ``outdir`` (created), where the models are built before they move."""
    try:
        outdir.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=".coreml-tmp-", dir=outdir))
    except OSError as err:
        raise ConversionError(f"{outdir}: cannot create the output folder ({err.strerror})") from None


def _convert_into(built: Path, spec: NetSpec, precision: str, shapes: list[tuple[int, int, int, int]],
                  max_batch: int, compute_units: str, weights_name: str) -> dict:
    """Convert one net and save it as ``built``; its entry of the report."""
    start = time.perf_counter()
    model = _convert_net(spec, precision, shapes, max_batch, compute_units, weights_name)
    model.save(str(built))
    normalise_permissions(built)
    side = CROP_SIZES.get(spec.name)
    return {"file": built.name,
            "input_shapes": [list(s) for s in shapes] if spec.name == "pnet" else None,
            "input_shape": None if spec.name == "pnet" else [[1, max_batch], 3, side, side],
            "bytes": tree_bytes(built), "seconds": round(time.perf_counter() - start, 3),
            "weights_sha256": net_digest(spec)}


def _replace_all(targets: dict[str, Path], staging: Path) -> None:
    """Move each staged file onto its target; a target that exists goes to ``staging/.replaced`` first."""
    trash = staging / ".replaced"
    trash.mkdir()
    for key, target in targets.items():
        if target.exists() or target.is_symlink():
            os.replace(target, trash / key)
        os.replace(staging / target.name, target)


def convert_coreml(weights: WeightSet, outdir: str | Path, precision: str = "fp32",
                   frame_sizes: Iterable[Sequence[int]] = DEFAULT_FRAME_SIZES, max_batch: int = 256,
                   compute_units: str = "ALL", overwrite: bool = False, min_face: float = CascadeParams.min_face,
                   factor: float = CascadeParams.factor) -> dict[str, Path]:
    """Convert PNet, RNet and ONet to Core ML ``.mlpackage`` files in ``outdir``.

    Writes ``pnet.mlpackage``, ``rnet.mlpackage``, ``onet.mlpackage`` (``*_fp16.mlpackage`` for
    ``precision="fp16"``) and a JSON report (``coreml_report[_fp16].json``: coremltools version,
    precision, input shapes, sizes in bytes, conversion seconds). Everything is built in a
    temporary folder inside ``outdir`` and renamed into place at the end, so an interrupted
    conversion leaves no partial packages. Existing outputs raise :class:`OutputExists` unless
    ``overwrite=True``.

    ``frame_sizes`` (width, height) pairs, ``min_face`` and ``factor`` give PNet's enumerated input
    shapes (:func:`pnet_input_shapes`); ``max_batch`` bounds the RNet/ONet batch (1..max_batch);
    ``compute_units`` (one of :data:`COMPUTE_UNITS`) is recorded in the models' metadata as the
    compute units :class:`~mtcnn_lab.backends.coreml.CoreMLBackend` loads them with by default.

    Returns ``{"pnet": path, "rnet": path, "onet": path, "report": path}``.
    """
    # 1. check the arguments; PNet's enumerated input shapes
    precision = _check_precision(precision)
    compute_units = check_compute_units(compute_units)
    positive_int(max_batch, "max_batch")
    frame_sizes = _check_frame_sizes(frame_sizes)
    shapes = _checked_pnet_shapes(frame_sizes, min_face, factor)
    ct = import_coremltools()

    # 2. the files to write, and a staging folder beside them
    outdir = Path(outdir)
    targets = {net: outdir / model_filename(net, precision) for net in NET_NAMES}
    targets["report"] = outdir / _report_filename(precision)
    if not overwrite:
        refuse_existing(targets.values())
    staging = _staging_folder(outdir)

    try:
        report: dict = {
            "format": "mlprogram",
            "coremltools": ct.__version__,
            "precision": precision,
            "compute_units": compute_units,
            "minimum_deployment_target": DEPLOYMENT_TARGET,
            "weights": weights.name,
            "frame_sizes": [list(s) for s in frame_sizes],
            "min_face": min_face,
            "factor": factor,
            "max_batch": max_batch,
            "input": INPUT_NAME,
            "output": OUTPUT_NAME,
            "models": {},
        }
        # 3. convert and save each net into the staging folder, then the report
        for net, spec in weights.nets().items():
            built = staging / targets[net].name
            report["models"][net] = _convert_into(built, spec, precision, shapes, max_batch, compute_units,
                                                  weights.name)
        (staging / targets["report"].name).write_text(json.dumps(report, indent=2) + "\n")
        normalise_permissions(staging / targets["report"].name)
        # 4. move everything into place at once
        if not overwrite:  # something may have appeared while converting
            refuse_existing(targets.values())
        _replace_all(targets, staging)
    except OSError as err:
        raise ConversionError(f"{outdir}: cannot write the Core ML models ({err})") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return targets
