"""PyTorch backend: the three nets as ``nn.Module``s on CPU, CUDA or Apple MPS, FP32 or FP16."""

from __future__ import annotations

import numpy as np

from ..errors import ParameterError
from ..weights import WeightSet


def available_devices() -> list[str]:
    """Torch devices usable here, best first (``cuda``, ``mps``, ``cpu``)."""
    import torch

    devices = []
    if torch.cuda.is_available():
        devices.append("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        devices.append("mps")
    return [*devices, "cpu"]


class TorchBackend:
    """Runs PNet/RNet/ONet with PyTorch.

    ``device``: ``"cpu"``, ``"cuda"``, ``"mps"`` or ``"auto"`` (the first of
    :func:`available_devices`). ``half=True`` runs the nets in float16 (CUDA/MPS; on CPU float16
    convolutions are slow or unsupported). Inputs and outputs are float32 numpy arrays.
    """

    def __init__(self, weights: WeightSet, device: str = "auto", half: bool = False):
        import torch

        from ..torch_nets import OpenFaceNet

        self.torch = torch
        devices = available_devices()
        self.device = devices[0] if device == "auto" else device
        if self.device not in devices:
            raise ParameterError(f"torch device {device!r} is not available here; available: {', '.join(devices)}")
        self.dtype = torch.float16 if half else torch.float32
        self.nets = {name: OpenFaceNet(spec).to(self.device, self.dtype) for name, spec in weights.nets().items()}
        self.name = f"torch-{self.device}" + ("-fp16" if half else "")

    def _run(self, net: str, batch: np.ndarray) -> np.ndarray:
        torch = self.torch
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(batch, np.float32)).to(self.device, self.dtype)
            return self.nets[net](x).float().cpu().numpy()

    def run_layers(self, net: str, batch: np.ndarray) -> dict[str, np.ndarray]:
        """Every layer's output of ``net`` (``pnet``, ``rnet``, ``onet``), keyed like the reference."""
        torch = self.torch
        outputs = {}
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(batch, np.float32)).to(self.device, self.dtype)
            for key, module in self.nets[net].named_children():
                x = module(x)
                outputs[key] = x.float().cpu().numpy()
        return outputs

    def run_pnet(self, images: np.ndarray) -> np.ndarray:
        """(N, 3, h, w) -> (N, 6, h', w') PNet heat maps."""
        return self._run("pnet", images)

    def run_rnet(self, crops: np.ndarray) -> np.ndarray:
        """(N, 3, 24, 24) -> (N, 6) RNet outputs."""
        return self._run("rnet", crops)

    def run_onet(self, crops: np.ndarray) -> np.ndarray:
        """(N, 3, 48, 48) -> (N, 16) ONet outputs."""
        return self._run("onet", crops)
