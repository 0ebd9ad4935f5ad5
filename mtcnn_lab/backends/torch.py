"""PyTorch backend: the three nets as ``nn.Module``s on CPU, CUDA or Apple MPS, FP32 or FP16; with
``whole_cascade`` the detector runs the whole cascade on the device (:mod:`mtcnn_lab.cascade.device`)."""

from __future__ import annotations

import logging
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np

from mtcnn_lab.backends.base import NetRunner, fp16_nets, precision_suffix
from mtcnn_lab.backends.batch_invariance import measure_batch_limits
from mtcnn_lab.errors import ParameterError
from mtcnn_lab.weights.netspec import NET_NAMES, WeightSet

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

PREFERRED_BATCH = {"cuda": 64, "mps": 16, "cpu": 8}
"""Frames per device-cascade call by device type (``DeviceNets.preferred_batch``)."""


def available_devices() -> list[str]:
    """Torch devices usable here, best first (``cuda``, ``mps``, ``cpu``)."""
    import torch

    devices = []
    if torch.cuda.is_available():
        devices.append("cuda")
    if torch.backends.mps.is_available():
        devices.append("mps")
    return [*devices, "cpu"]


def exact_cuda_maths(torch: ModuleType) -> None:
    """FP32 convolutions and matrix products in IEEE float32 on CUDA (no TF32), deterministic cuDNN algorithms."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    log.info("torch on CUDA: TF32 off, deterministic cuDNN algorithms")


class TorchBackend(NetRunner):
    """Runs PNet/RNet/ONet with PyTorch.

    ``device``: ``"cpu"``, ``"cuda"``, ``"mps"`` or ``"auto"`` (the first of
    :func:`available_devices`). ``precision`` (see :data:`~mtcnn_lab.backends.base.PRECISIONS`)
    runs the nets it names in float16 (CUDA/MPS; on CPU float16
    convolutions are slow or unsupported). Inputs and outputs are float32 numpy arrays.
    ``whole_cascade=True`` (FP32 only) makes the backend its own :class:`~mtcnn_lab.backends.base.DeviceNets`:
    the detector then runs every step of the cascade on the device (name ``torch-cascade[-cuda|-mps]``).
    On CUDA, TF32 is switched off and cuDNN restricted to deterministic algorithms, process-wide.
    """

    def __init__(self, weights: WeightSet, device: str = "auto", precision: str = "fp32",
                 whole_cascade: bool = False):
        import torch

        from mtcnn_lab.nets.torch import OpenFaceNet

        self.torch = torch
        devices = available_devices()
        kind = devices[0] if device == "auto" else device
        if kind not in devices:
            raise ParameterError(f"torch device {device!r} is not available here; available: {', '.join(devices)}")
        self.device = torch.device(kind)
        half = fp16_nets(precision)
        if whole_cascade and half:
            raise ParameterError("the whole cascade on the device runs in FP32 only; use precision='fp32'")
        if kind == "cuda":
            exact_cuda_maths(torch)
        self.dtypes = {net: torch.float16 if net in half else torch.float32 for net in NET_NAMES}
        self.nets = {net: OpenFaceNet(spec).to(self.device, self.dtypes[net]) for net, spec in weights.nets().items()}
        if whole_cascade:
            self.name = "torch-cascade" + ("" if kind == "cpu" else f"-{kind}")
        else:
            self.name = f"torch-{kind}" + precision_suffix(precision)
        self.batch_limits = measure_batch_limits(self)
        self.device_nets = self if whole_cascade else None
        self.preferred_batch = PREFERRED_BATCH[kind]

    def run_tensor(self, net: str, batch: torch.Tensor) -> torch.Tensor:
        """``net`` on a float32 tensor batch on this backend's device; raw float32 outputs, on the device. On
        CUDA, cuDNN runs with TF32 off and deterministic algorithms for the call, whatever the process set."""
        torch = self.torch
        with torch.inference_mode(), torch.backends.cudnn.flags(enabled=True, benchmark=False, deterministic=True,
                                                                 allow_tf32=False):
            return self.nets[net](batch.to(self.dtypes[net])).float()

    def _run(self, net: str, batch: np.ndarray) -> np.ndarray:
        x = self.torch.from_numpy(np.ascontiguousarray(batch, np.float32)).to(self.device)
        return self.run_tensor(net, x).cpu().numpy()

    def close(self) -> None:
        """Drop the modules (and the device memory they hold)."""
        self.nets = {}

    def run_layers(self, net: str, batch: np.ndarray) -> dict[str, np.ndarray]:
        """Every layer's output of ``net`` (``pnet``, ``rnet``, ``onet``), keyed like the reference."""
        torch = self.torch
        outputs = {}
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(batch, np.float32)).to(self.device, self.dtypes[net])
            for key, module in self.nets[net].named_children():
                x = module(x)
                outputs[key] = x.float().cpu().numpy()
        return outputs
