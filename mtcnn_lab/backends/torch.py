"""PyTorch backend: the three nets as ``nn.Module``s on CPU, CUDA or Apple MPS, FP32 or FP16."""

from __future__ import annotations

import numpy as np

from mtcnn_lab.backends.base import NetRunner, fp16_nets, precision_suffix
from mtcnn_lab.backends.batch_invariance import measure_batch_limits
from mtcnn_lab.errors import ParameterError
from mtcnn_lab.weights.netspec import NET_NAMES, WeightSet


def available_devices() -> list[str]:
    """Torch devices usable here, best first (``cuda``, ``mps``, ``cpu``)."""
    import torch

    devices = []
    if torch.cuda.is_available():
        devices.append("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        devices.append("mps")
    return [*devices, "cpu"]


class TorchBackend(NetRunner):
    """Runs PNet/RNet/ONet with PyTorch.

    ``device``: ``"cpu"``, ``"cuda"``, ``"mps"`` or ``"auto"`` (the first of
    :func:`available_devices`). ``precision`` (see :data:`~mtcnn_lab.backends.base.PRECISIONS`)
    runs the nets it names in float16 (CUDA/MPS; on CPU float16
    convolutions are slow or unsupported). Inputs and outputs are float32 numpy arrays.
    """

    def __init__(self, weights: WeightSet, device: str = "auto", precision: str = "fp32"):
        import torch

        from mtcnn_lab.nets.torch import OpenFaceNet

        self.torch = torch
        devices = available_devices()
        self.device = devices[0] if device == "auto" else device
        if self.device not in devices:
            raise ParameterError(f"torch device {device!r} is not available here; available: {', '.join(devices)}")
        half = fp16_nets(precision)
        self.dtypes = {net: torch.float16 if net in half else torch.float32 for net in NET_NAMES}
        self.nets = {net: OpenFaceNet(spec).to(self.device, self.dtypes[net]) for net, spec in weights.nets().items()}
        self.name = f"torch-{self.device}" + precision_suffix(precision)
        self.batch_limits = measure_batch_limits(self)

    def _run(self, net: str, batch: np.ndarray) -> np.ndarray:
        torch = self.torch
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(batch, np.float32)).to(self.device, self.dtypes[net])
            return self.nets[net](x).float().cpu().numpy()

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
