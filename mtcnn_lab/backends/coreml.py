"""Core ML backend: PNet/RNet/ONet as ``.mlpackage`` ML programs on macOS (CPU, GPU, Neural Engine).

Prediction needs macOS and coremltools' native runtime; elsewhere constructing the backend raises
:class:`BackendUnavailable` (conversion itself works anywhere: ``mtcnn-lab convert --to coreml``
or :func:`mtcnn_lab.convert.coreml.convert_coreml`). :func:`coreml_available` says which applies.
With ``simulate=True`` (backends ``coreml-sim*``) the same saved programs are executed on any OS by
mtcnn-lab's MIL executor (:class:`~mtcnn_lab.nets.mil.MilProgram`) instead of Core ML.

Shapes. PNet models accept only their enumerated pyramid-level sizes (those of the frame sizes
they were converted for). A level of another size is, by default, run by the reference
:class:`~mtcnn_lab.backends.numpy.NumpyBackend` instead (with its FP16 emulation for FP16 models,
so the numerics stay those of an FP16 runtime), with one :class:`CoreMLShapeWarning` per new size
and the sizes collected in :attr:`CoreMLBackend.fallback_shapes`; ``strict_shapes=True`` raises
:class:`~mtcnn_lab.errors.ParameterError` instead. Padding a level up to an enumerated size is not
an option: PNet's ceil-mode pooling would then see padded values at the bottom and right edges.
RNet and ONet batches larger than the models' ``max_batch`` are split into chunks.
"""

from __future__ import annotations

import contextlib
import io
import logging
import platform
import sys
import tempfile
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from mtcnn_lab.backends.base import ClosesOnExit, fp16_nets, precision_suffix
from mtcnn_lab.backends.batch_invariance import PROBE_SIZES, measure_batch_limits
from mtcnn_lab.convert.coreml import (
    DEFAULT_FRAME_SIZES,
    INPUT_NAME,
    METADATA_PREFIX,
    OUTPUT_NAME,
    check_compute_units,
    convert_coreml,
    import_coremltools,
    model_filename,
    net_digest,
)
from mtcnn_lab.errors import BackendUnavailable, ConversionError, ParameterError
from mtcnn_lab.nets.mil import MilProgram
from mtcnn_lab.weights.netspec import CROP_SIZES, NET_NAMES, WeightSet

log = logging.getLogger(__name__)


class CoreMLShapeWarning(UserWarning):
    """A PNet input size is not among the model's enumerated shapes; another backend ran it."""


def coreml_available() -> tuple[bool, str]:
    """``(True, description)`` when Core ML models can be run here, else ``(False, reason)``."""
    if sys.platform != "darwin":
        return False, (f"Core ML prediction needs macOS (this is {platform.system() or sys.platform}); "
                       "conversion works here: mtcnn-lab convert --to coreml")
    try:
        ct = import_coremltools()
    except ConversionError:
        return False, "coremltools is not installed; pip install 'mtcnn-lab[coreml]'"
    from coremltools.models import model as ct_model

    if getattr(ct_model, "_MLModelProxy", None) is None:
        return False, (f"coremltools {ct.__version__} has no native Core ML runtime (libcoremlpython) for "
                       f"Python {platform.python_version()} on macOS {platform.mac_ver()[0]}; "
                       "install a coremltools wheel built for them")
    return True, f"coremltools {ct.__version__} on macOS {platform.mac_ver()[0]}"


def _enumerated_shapes(spec) -> set[tuple[int, ...]]:
    array = spec.description.input[0].type.multiArrayType
    shapes = {tuple(int(d) for d in s.shape) for s in array.enumeratedShapes.shapes}
    return shapes or {tuple(int(d) for d in array.shape)}


def _max_batch(spec) -> int:
    array = spec.description.input[0].type.multiArrayType
    ranges = array.shapeRange.sizeRanges
    return int(ranges[0].upperBound) if ranges else int(array.shape[0])


class CoreMLBackend(ClosesOnExit):
    """Runs PNet/RNet/ONet with Core ML (macOS only).

    ``precision``: ``"fp16"`` (default: RNet/ONet FP16, PNet FP32, see
    :data:`~mtcnn_lab.backends.base.PRECISIONS`), ``"fp16-all"`` (every net FP16, all of it can run on
    the Neural Engine) or ``"fp32"``.
    ``compute_units``: ``ALL``, ``CPU_AND_NE``, ``CPU_AND_GPU`` or ``CPU_ONLY``; ``None`` uses the
    one stored in the models at conversion (``ALL`` for models this backend converts itself).
    ``model_dir``: a folder with ``pnet[_fp16].mlpackage`` etc. made by
    :func:`~mtcnn_lab.convert.coreml.convert_coreml`; missing models are converted into it (so it
    works as a cache); ``None`` converts into a temporary folder for this backend's lifetime. Models
    converted from other weights raise :class:`~mtcnn_lab.errors.ParameterError`.
    ``frame_sizes`` and ``max_batch`` are used only when converting. See the module docstring for
    ``strict_shapes``. ``simulate``: execute the saved programs with :class:`~mtcnn_lab.nets.mil.MilProgram`
    (any OS; ``compute_units`` is then ignored) instead of Core ML.
    """

    def __init__(self, weights: WeightSet, precision: str = "fp16", compute_units: str | None = None,
                 model_dir: str | Path | None = None, *,
                 frame_sizes: Iterable[Sequence[int]] = DEFAULT_FRAME_SIZES, max_batch: int = 256,
                 strict_shapes: bool = False, simulate: bool = False):
        half = fp16_nets(precision)
        file_precision = {net: "fp16" if net in half else "fp32" for net in NET_NAMES}
        units = None if compute_units is None else check_compute_units(compute_units)
        available, reason = coreml_available()
        if not available and not simulate:
            raise BackendUnavailable(f"the Core ML backend cannot run here: {reason}")
        ct = import_coremltools()

        self._tempdir = None
        if model_dir is None:
            self._tempdir = tempfile.TemporaryDirectory(prefix="mtcnn-lab-coreml-")
            model_dir = self._tempdir.name
        self.model_dir = Path(model_dir)
        paths = {net: self.model_dir / model_filename(net, file_precision[net]) for net in NET_NAMES}
        for needed in sorted({file_precision[net] for net, path in paths.items() if not path.exists()}):
            log.info("converting the %s Core ML programs into %s", needed, self.model_dir)
            with contextlib.redirect_stderr(io.StringIO()):  # coremltools' progress bars, one per pass
                convert_coreml(weights, self.model_dir, needed, frame_sizes=frame_sizes, max_batch=max_batch,
                               compute_units=units or "ALL", overwrite=True)

        self.models, specs = {}, {}
        for net, path in paths.items():
            saved = ct.models.MLModel(str(path), skip_model_load=True)  # readable on any OS
            meta = saved.user_defined_metadata
            if meta.get(METADATA_PREFIX + "weights_sha256") != net_digest(weights.nets()[net]):
                raise ParameterError(
                    f"{path} was not converted from the {weights.name!r} weights; reconvert it with "
                    "mtcnn-lab convert --to coreml --overwrite or use another model_dir"
                )
            specs[net] = saved.get_spec()
            if simulate:
                self.models[net] = MilProgram(path)
                continue
            units = units or check_compute_units(meta.get(METADATA_PREFIX + "compute_units", "ALL"))
            self.models[net] = ct.models.MLModel(str(path), compute_units=getattr(ct.ComputeUnit, units))
        self.simulate = simulate
        self.compute_units = None if simulate else units
        self.pnet_shapes = _enumerated_shapes(specs["pnet"])
        self.max_batch = {net: _max_batch(specs[net]) for net in CROP_SIZES}
        self.strict_shapes = strict_shapes
        self.fallback_shapes: set[tuple[int, ...]] = set()
        self._weights = weights
        self._fallback = None
        self.precision = precision
        self.pnet_file = paths["pnet"]
        kind = "coreml-sim" if simulate else "coreml"
        self.name = f"{kind}{precision_suffix(precision) or '-fp32'}" + ("" if simulate else f"-{self.compute_units}")
        # PNet runs one Core ML call per image (above), so its batches cannot change the bits; and a probe
        # shape that is not enumerated would fall back to numpy
        self.batch_limits = {"pnet": max(PROBE_SIZES["pnet"]), **measure_batch_limits(self, ("rnet", "onet"))}

    layer_taps = False
    device_nets = None

    def run_layers(self, net: str, batch: np.ndarray) -> dict[str, np.ndarray]:
        """Not available: a compiled Core ML program gives only its outputs."""
        raise BackendUnavailable(f"{self.name} gives no per-layer outputs (Core ML runs compiled programs); "
                                 "compare layers with the numpy, torch, onnx or openvino backend")

    def close(self) -> None:
        """Drop the models and delete the temporary folder of models this backend converted."""
        self.models = {}
        if self._tempdir is not None:
            self._tempdir.cleanup()
            self._tempdir = None

    def _predict(self, net: str, batch: np.ndarray) -> np.ndarray:
        if self.simulate:
            return self.models[net].run(batch)
        result = self.models[net].predict({INPUT_NAME: np.ascontiguousarray(batch, np.float32)})
        return np.asarray(result[OUTPUT_NAME], np.float32)

    def _fallback_pnet(self, images: np.ndarray) -> np.ndarray:
        shape = (1, *images.shape[1:])
        if self.strict_shapes:
            raise ParameterError(
                f"PNet input {shape[2]}x{shape[3]} is not one of the {len(self.pnet_shapes)} enumerated shapes of "
                f"{self.pnet_file}; convert with frame_sizes that include "
                "this frame size, or use strict_shapes=False"
            )
        if shape not in self.fallback_shapes:
            self.fallback_shapes.add(shape)
            warnings.warn(f"PNet input {shape[2]}x{shape[3]} is not an enumerated Core ML shape; running it with "
                          "the numpy reference backend", CoreMLShapeWarning, stacklevel=3)
        return self._numpy().run_pnet(images)

    def _numpy(self):
        if self._fallback is None:
            from mtcnn_lab.backends.numpy import NumpyBackend

            self._fallback = NumpyBackend(self._weights, precision=self.precision)
        return self._fallback

    def run_pnet(self, images: np.ndarray) -> np.ndarray:
        """(N, 3, h, w) -> (N, 6, h', w') PNet heat maps (one Core ML call per image)."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ParameterError(f"PNet input must be (N, 3, h, w), got {images.shape}")
        if len(images) == 0:
            return self._numpy().run_pnet(images)
        if (1, *images.shape[1:]) not in self.pnet_shapes:
            return self._fallback_pnet(images)
        return np.concatenate([self._predict("pnet", image[None]) for image in images])

    def _run_batched(self, net: str, crops: np.ndarray, n_out: int) -> np.ndarray:
        side = CROP_SIZES[net]
        if crops.ndim != 4 or crops.shape[1:] != (3, side, side):
            raise ParameterError(f"{net.upper()} input must be (N, 3, {side}, {side}), got {crops.shape}")
        if len(crops) == 0:
            return np.zeros((0, n_out), np.float32)
        step = self.max_batch[net]
        outputs = [self._predict(net, crops[i:i + step]) for i in range(0, len(crops), step)]
        return np.concatenate(outputs).reshape(len(crops), n_out)

    def run_rnet(self, crops: np.ndarray) -> np.ndarray:
        """(N, 3, 24, 24) -> (N, 6) RNet outputs."""
        return self._run_batched("rnet", crops, 6)

    def run_onet(self, crops: np.ndarray) -> np.ndarray:
        """(N, 3, 48, 48) -> (N, 16) ONet outputs."""
        return self._run_batched("onet", crops, 16)
