"""ONNX Runtime backend: the three nets as ONNX models on TensorRT, CUDA, Core ML or CPU, FP32 or FP16.

The models are exported in memory from the weight set by :mod:`mtcnn_lab.convert.onnx` (no files
needed), or read from a folder written by :func:`~mtcnn_lab.convert.onnx.export_onnx`. Needs the
``onnx`` extra: ``pip install 'mtcnn-lab[onnx]'`` (``onnxruntime-gpu`` instead of ``onnxruntime``
for CUDA/TensorRT).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mtcnn_lab.backends.base import NetRunner, fp16_nets, precision_suffix
from mtcnn_lab.backends.batch_invariance import measure_batch_limits
from mtcnn_lab.checks import one_of, positive_int
from mtcnn_lab.errors import BackendUnavailable, ConversionError, ParameterError
from mtcnn_lab.weights.netspec import NET_NAMES, WeightSet

PROVIDER_PREFERENCE = (
    "TensorrtExecutionProvider",
    "CUDAExecutionProvider",
    "CoreMLExecutionProvider",
    "CPUExecutionProvider",
)
OPTIMIZATION_LEVELS = {
    "disable": "ORT_DISABLE_ALL",
    "basic": "ORT_ENABLE_BASIC",
    "extended": "ORT_ENABLE_EXTENDED",
    "all": "ORT_ENABLE_ALL",
}
INSTALL_HINT = "the ONNX backend needs onnxruntime: pip install 'mtcnn-lab[onnx]'"


def _import_ort():
    try:
        import onnxruntime
    except ImportError:
        raise BackendUnavailable(INSTALL_HINT) from None
    return onnxruntime


def choose_providers(available: list[str] | None = None) -> list[str]:
    """The execution providers to use, best first; the one place holding the provider policy.

    Keeps, in the order TensorRT, CUDA, Core ML, CPU, those in ``available`` (default: what the
    installed onnxruntime offers, ``onnxruntime.get_available_providers()``). CPU is always last,
    even when ``available`` does not list it (every onnxruntime build has it).
    """
    if available is None:
        available = _import_ort().get_available_providers()
    offered = set(available)
    chosen = [p for p in PROVIDER_PREFERENCE[:-1] if p in offered]
    return [*chosen, "CPUExecutionProvider"]


def _provider_short_name(provider: str) -> str:
    """``CUDAExecutionProvider`` -> ``cuda``."""
    return provider.removesuffix("ExecutionProvider").lower()


class OnnxBackend(NetRunner):
    """Runs PNet/RNet/ONet with ONNX Runtime.

    ``providers``: execution providers in order of preference (default :func:`choose_providers`);
    names the installed onnxruntime lacks raise :class:`~mtcnn_lab.errors.ParameterError`.
    ``threads``: ``intra_op_num_threads`` (inter-op is then 1); default: onnxruntime's choice.
    ``optimization``: graph optimisation level, ``"disable"``, ``"basic"``, ``"extended"`` or
    ``"all"``. ``precision``: ``"fp32"``, ``"fp16"`` or ``"fp16-all"`` (see
    :data:`~mtcnn_lab.backends.base.PRECISIONS`): FP16 models, with FP32 inputs and outputs, for the
    nets the policy names. ``model_dir``: read ``pnet.onnx``... (``*_fp16.onnx`` for FP16 nets) from
    that folder instead of exporting the weights; :meth:`run_layers` always exports from ``weights``.

    ``name`` is ``onnx-<provider>`` for the provider that runs the nets (``onnx-cpu``,
    ``onnx-cuda``, ...), with ``-fp16`` / ``-fp16-all`` appended for those precisions. Inputs and
    outputs are float32.
    """

    def __init__(self, weights: WeightSet, providers: list[str] | None = None, threads: int | None = None,
                 optimization: str = "all", precision: str = "fp32", model_dir: str | Path | None = None):
        ort = _import_ort()
        self.ort = ort
        self.weights = weights
        self.half = fp16_nets(precision)
        one_of(optimization, OPTIMIZATION_LEVELS, "ONNX optimization level")
        positive_int(threads, "threads", optional=True)
        available = ort.get_available_providers()
        if providers is None:
            providers = choose_providers(available)
        else:
            providers = list(providers)
            missing = [p for p in providers if p not in available]
            if missing or not providers:
                raise ParameterError(f"ONNX Runtime providers {missing or providers} are not available here; "
                                     f"available: {', '.join(available)}")
        self.providers = providers
        self.options = ort.SessionOptions()
        self.options.graph_optimization_level = getattr(ort.GraphOptimizationLevel,
                                                        OPTIMIZATION_LEVELS[optimization])
        if threads is not None:
            self.options.intra_op_num_threads = threads
            self.options.inter_op_num_threads = 1
        # idle workers sleep instead of spinning: spinning steals the cores that video decoding and the
        # cascade's own numpy/OpenCV work need on a small machine
        self.options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.sessions = {net: self._session(self._model(net, model_dir)) for net in NET_NAMES}
        self._tap_sessions: dict[str, object] = {}
        used = self.sessions["pnet"].get_providers()[0]
        self.name = f"onnx-{_provider_short_name(used)}" + precision_suffix(precision)
        self.batch_limits = measure_batch_limits(self)

    def _model(self, net: str, model_dir: str | Path | None, taps: bool = False) -> bytes:
        from mtcnn_lab.convert.onnx import fp16_model, model_file_name, onnx_model_bytes

        if model_dir is not None and not taps:
            path = Path(model_dir) / model_file_name(net, net in self.half)
            try:
                return path.read_bytes()
            except OSError as err:
                raise ParameterError(f"{path}: cannot read the ONNX model ({err.strerror}); write it with "
                                     "mtcnn_lab.convert.onnx.export_onnx or leave model_dir unset") from None
        try:
            data = onnx_model_bytes(self.weights.nets()[net], taps=taps)
            return fp16_model(data) if net in self.half else data
        except ConversionError as err:
            raise BackendUnavailable(str(err)) from None

    def close(self) -> None:
        """Drop the inference sessions (onnxruntime frees them with the last reference)."""
        self.sessions, self._tap_sessions = {}, {}

    def _session(self, model: bytes):
        return self.ort.InferenceSession(model, sess_options=self.options, providers=self.providers)

    def _run(self, net: str, batch: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(batch, np.float32)
        return np.asarray(self.sessions[net].run(None, {"input": x})[0], np.float32)

    def run_layers(self, net: str, batch: np.ndarray) -> dict[str, np.ndarray]:
        """Every layer's output for a batch, keyed like :func:`mtcnn_lab.nets.reference.forward_layers`.

        Uses the net's taps export (built on first use, from ``weights``, FP16 if the backend is).
        """
        one_of(net, NET_NAMES, "net")
        if net not in self._tap_sessions:
            self._tap_sessions[net] = self._session(self._model(net, None, taps=True))
        session = self._tap_sessions[net]
        x = np.ascontiguousarray(batch, np.float32)
        names = [o.name for o in session.get_outputs()]
        values = session.run(names, {"input": x})
        return {"in": x, **{name: np.asarray(v, np.float32) for name, v in zip(names, values, strict=True)}}
