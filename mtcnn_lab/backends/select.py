"""Choosing a backend: the names, the ``auto`` fallback chain and the self-check.

The one place that knows which runtimes exist. ``make_backend("auto", weights)`` tries, in order:
Core ML with FP16 RNet/ONet (macOS), the whole cascade in torch on a CUDA GPU, ONNX Runtime on a GPU
provider, torch on CUDA/MPS, OpenVINO on the CPU, ONNX Runtime on the CPU, numpy. Each candidate is built,
then checked against the numpy reference on a tiny input; a candidate that cannot be built or disagrees is
logged with the reason and the next one is tried.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Collection
from dataclasses import dataclass

import numpy as np

from mtcnn_lab.backends.base import Backend
from mtcnn_lab.backends.numpy import NumpyBackend
from mtcnn_lab.checks import one_of
from mtcnn_lab.errors import BackendUnavailable, ConversionError, MtcnnLabError
from mtcnn_lab.weights.netspec import WeightSet

__all__ = [
    "CHOICES", "AUTO_ORDER", "FP32_TOLERANCE", "FP16_TOLERANCE", "BackendChoice", "pick_backend", "make_backend",
    "build_checked", "self_check", "backend_report", "gpu_driver_present",
]

log = logging.getLogger(__name__)

FP32_TOLERANCE = 1e-4
"""Largest |difference| of any raw output allowed for an FP32 backend in the self-check."""
FP16_TOLERANCE = 0.1
"""The same for FP16 backends (outputs are logits and offsets of magnitude ~1-10)."""


def _onnx(weights: WeightSet, gpu: bool | None, precision: str = "fp32", threads: int | None = None) -> Backend:
    try:
        from mtcnn_lab.backends.onnx import OnnxBackend, choose_providers
    except ImportError as err:
        raise BackendUnavailable(f"onnxruntime is not installed ({err}); pip install 'mtcnn-lab[onnx]'") from None
    providers = choose_providers()
    if gpu is True:
        providers = [p for p in providers if p != "CPUExecutionProvider"]
        if not providers:
            raise BackendUnavailable("onnxruntime offers no GPU provider here (CPU only)")
    elif gpu is False:
        providers = ["CPUExecutionProvider"]
    return OnnxBackend(weights, providers=providers, precision=precision, threads=threads)


def _openvino(weights: WeightSet, threads: int | None) -> Backend:
    try:
        from mtcnn_lab.backends.openvino import OpenVinoBackend
    except ImportError as err:
        raise BackendUnavailable(f"openvino is not installed ({err}); pip install 'mtcnn-lab[openvino]' (a default "
                                 "dependency where OpenVINO has wheels: x86-64 and 64-bit ARM)") from None

    return OpenVinoBackend(weights, threads=threads)


GPU_DRIVER_FILES = ("/proc/driver/nvidia/version", "/dev/nvidiactl", "/dev/dxg", "/dev/kfd")
"""Files one of which a Linux machine has when torch could see a GPU: NVIDIA's driver, WSL's GPU, AMD ROCm."""


def gpu_driver_present() -> bool:
    """Whether torch could find a GPU here, decided without importing torch (slow): on Linux, one of
    :data:`GPU_DRIVER_FILES` exists; elsewhere (macOS MPS, Windows) only torch can tell, so True."""
    if not sys.platform.startswith("linux") or "torch" in sys.modules:
        return True
    return any(os.path.exists(path) for path in GPU_DRIVER_FILES)


def _torch(weights: WeightSet, device: str, precision: str = "fp32", whole_cascade: bool = False) -> Backend:
    if device in ("gpu", "cuda") and not gpu_driver_present():
        raise BackendUnavailable(f"no GPU driver here (none of {', '.join(GPU_DRIVER_FILES)}); torch was not loaded")
    try:
        from mtcnn_lab.backends.torch import TorchBackend, available_devices
    except ImportError as err:
        raise BackendUnavailable(f"torch is not installed ({err}); pip install 'mtcnn-lab[torch]' (CPU) or a CUDA "
                                 "build of torch") from None
    devices = available_devices()
    if device == "gpu":
        gpus = [d for d in devices if d != "cpu"]
        if not gpus:
            raise BackendUnavailable("torch sees no CUDA or MPS device here")
        device = gpus[0]
    elif device not in devices:
        raise BackendUnavailable(f"torch device {device!r} is not available here (have: {', '.join(devices)})")
    return TorchBackend(weights, device=device, precision=precision, whole_cascade=whole_cascade)


def _coreml(weights: WeightSet, precision: str, simulate: bool = False) -> Backend:
    try:
        from mtcnn_lab.backends.coreml import CoreMLBackend, coreml_available
    except ImportError as err:
        raise BackendUnavailable(f"coremltools is not installed ({err}); pip install 'mtcnn-lab[coreml]'") from None
    ok, reason = coreml_available()
    if not ok and not simulate:
        raise BackendUnavailable(reason)
    try:
        return CoreMLBackend(weights, precision=precision, simulate=simulate)
    except ConversionError as err:  # a conversion coremltools refuses, or a damaged package
        raise BackendUnavailable(f"the Core ML programs cannot be converted or read here: {err}") from None


@dataclass(frozen=True)
class BackendChoice:
    """A backend name, how to build it, and the self-check tolerance of its precision."""

    name: str
    build: Callable[[WeightSet, int | None], Backend]  # (weights, threads) -> backend
    tolerance: float
    description: str


CHOICES = {c.name: c for c in [
    BackendChoice("coreml", lambda w, t: _coreml(w, "fp16"), FP16_TOLERANCE,
                  "Core ML, RNet/ONet FP16 and PNet FP32 (macOS)"),
    BackendChoice("coreml-fp16-all", lambda w, t: _coreml(w, "fp16-all"), FP16_TOLERANCE,
                  "Core ML, every net FP16: all on the Neural Engine (macOS)"),
    BackendChoice("coreml-fp32", lambda w, t: _coreml(w, "fp32"), FP32_TOLERANCE, "Core ML FP32 (macOS)"),
    BackendChoice("coreml-sim", lambda w, t: _coreml(w, "fp16", simulate=True), FP16_TOLERANCE,
                  "the saved Core ML programs of coreml (RNet/ONet FP16) executed by mtcnn-lab's MIL executor, any OS"),
    BackendChoice("coreml-sim-fp16-all", lambda w, t: _coreml(w, "fp16-all", simulate=True), FP16_TOLERANCE,
                  "the Core ML programs of coreml-fp16-all executed by the MIL executor, any OS"),
    BackendChoice("coreml-sim-fp32", lambda w, t: _coreml(w, "fp32", simulate=True), FP32_TOLERANCE,
                  "the Core ML FP32 programs executed by the MIL executor, any OS"),
    BackendChoice("onnx-gpu", lambda w, t: _onnx(w, gpu=True, threads=t), FP32_TOLERANCE,
                  "ONNX Runtime, TensorRT/CUDA/CoreML EP"),
    BackendChoice("torch-gpu", lambda w, t: _torch(w, "gpu"), FP32_TOLERANCE, "PyTorch on CUDA or MPS"),
    BackendChoice("openvino", _openvino, FP32_TOLERANCE, "OpenVINO on the CPU (oneDNN kernels)"),
    BackendChoice("onnx", lambda w, t: _onnx(w, gpu=False, threads=t), FP32_TOLERANCE, "ONNX Runtime on the CPU"),
    BackendChoice("onnx-fp16", lambda w, t: _onnx(w, gpu=None, precision="fp16", threads=t), FP16_TOLERANCE,
                  "ONNX Runtime, RNet/ONet FP16 models"),
    BackendChoice("onnx-fp16-all", lambda w, t: _onnx(w, gpu=None, precision="fp16-all", threads=t), FP16_TOLERANCE,
                  "ONNX Runtime, every net FP16"),
    BackendChoice("torch", lambda w, t: _torch(w, "cpu"), FP32_TOLERANCE, "PyTorch on the CPU"),
    BackendChoice("torch-cuda", lambda w, t: _torch(w, "cuda"), FP32_TOLERANCE, "PyTorch on CUDA"),
    BackendChoice("torch-cuda-fp16", lambda w, t: _torch(w, "cuda", "fp16"), FP16_TOLERANCE,
                  "PyTorch on CUDA, RNet/ONet FP16"),
    BackendChoice("torch-mps", lambda w, t: _torch(w, "mps"), FP32_TOLERANCE, "PyTorch on Apple MPS"),
    BackendChoice("torch-cascade", lambda w, t: _torch(w, "cpu", whole_cascade=True), FP32_TOLERANCE,
                  "the whole cascade as torch tensor ops (resize, NMS, crops, nets), here on the CPU"),
    BackendChoice("torch-cascade-cuda", lambda w, t: _torch(w, "cuda", whole_cascade=True), FP32_TOLERANCE,
                  "the whole cascade on a CUDA GPU: frames in once as uint8, only Detections back"),
    BackendChoice("torch-cascade-mps", lambda w, t: _torch(w, "mps", whole_cascade=True), FP32_TOLERANCE,
                  "the whole cascade on Apple MPS (not verified: no Mac here)"),
    BackendChoice("numpy", lambda w, t: NumpyBackend(w), 0.0, "numpy reference with OpenFace's C++ semantics"),
    BackendChoice("numpy-fp16", lambda w, t: NumpyBackend(w, "fp16"), FP16_TOLERANCE,
                  "numpy FP16 emulation of RNet/ONet (weights and activations rounded to float16)"),
    BackendChoice("numpy-fp16-all", lambda w, t: NumpyBackend(w, "fp16-all"), FP16_TOLERANCE,
                  "numpy FP16 emulation of every net"),
]}
AUTO_ORDER = ("coreml", "torch-cascade-cuda", "onnx-gpu", "torch-gpu", "openvino", "onnx", "numpy")
"""The fallback chain of ``backend="auto"``, best first."""


def self_check(backend: Backend, weights: WeightSet) -> float:
    """Largest |difference| between ``backend`` and the numpy reference on tiny fixed inputs."""
    rng = np.random.default_rng(0)
    reference = NumpyBackend(weights)
    worst = 0.0
    # PNet: the first pyramid level of a 640x480 frame, a shape the Core ML programs enumerate by default
    for call, shape in (("run_pnet", (1, 3, 96, 128)), ("run_rnet", (3, 3, 24, 24)), ("run_onet", (3, 3, 48, 48))):
        x = rng.uniform(-1, 1, shape).astype(np.float32)
        ours, theirs = getattr(backend, call)(x), getattr(reference, call)(x)
        if ours.shape != theirs.shape:
            raise BackendUnavailable(f"{call} returned shape {ours.shape}, the reference {theirs.shape}")
        worst = max(worst, float(np.abs(ours.astype(np.float64) - theirs).max()))
    return worst


def build_checked(name: str, weights: WeightSet, threads: int | None = None) -> tuple[Backend, float]:
    """Build backend ``name`` and self-check it; raise :class:`BackendUnavailable` with the reason."""
    choice = CHOICES[name]
    backend = None
    try:
        backend = choice.build(weights, threads)
        diff = self_check(backend, weights)
        if not diff <= choice.tolerance:
            raise BackendUnavailable(f"{name} disagrees with the numpy reference by {diff:.3g} "
                                     f"(tolerance {choice.tolerance:g})")
    except Exception as err:  # a runtime failing in its own way must not stop the fallback chain
        if backend is not None:
            backend.close()  # built but refused: its models and sessions go now
        if isinstance(err, MtcnnLabError):
            raise
        raise BackendUnavailable(f"{name} failed: {type(err).__name__}: {err}") from err
    return backend, diff


def pick_backend(name: str, weights: WeightSet, threads: int | None = None,
                 exclude: Collection[str] = ()) -> tuple[str, Backend]:
    """Build the backend called ``name`` (see :data:`CHOICES`), or the first that works for ``"auto"``
    (skipping the names in ``exclude``); returns ``(choice name, backend)``, so that ``"auto"``'s choice can be
    built again elsewhere.

    ``threads`` sizes the runtime's own thread pool where it has one (onnxruntime, OpenVINO); numpy,
    OpenCV and torch follow the process-wide limits (``threadpoolctl``, the lab's benchmark timing).
    """
    if name == "auto":
        for candidate in (c for c in AUTO_ORDER if c not in exclude):
            try:
                backend, diff = build_checked(candidate, weights, threads)
            except BackendUnavailable as err:
                log.info("backend %s skipped: %s", candidate, err)
                continue
            log.info("backend %s selected (self-check max |diff| %.2g)", candidate, diff)
            return candidate, backend
        raise BackendUnavailable("no backend works here, not even numpy")  # pragma: no cover
    return name, CHOICES[one_of(name, ["auto", *CHOICES], "backend")].build(weights, threads)


def make_backend(name: str, weights: WeightSet, threads: int | None = None) -> Backend:
    """The backend of :func:`pick_backend`."""
    return pick_backend(name, weights, threads)[1]


def backend_report(weights: WeightSet) -> list[dict]:
    """For every backend name: available or not, why, and its self-check difference."""
    rows = []
    for name, choice in CHOICES.items():
        try:
            backend, diff = build_checked(name, weights)
            backend.close()
            rows.append({"backend": name, "available": True, "max_abs_diff": diff, "reason": "",
                         "description": choice.description})
        except BackendUnavailable as err:
            rows.append({"backend": name, "available": False, "max_abs_diff": None, "reason": str(err),
                         "description": choice.description})
    return rows
