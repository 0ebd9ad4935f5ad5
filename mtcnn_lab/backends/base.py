"""What every runtime backend provides: the three network calls on batches.

Inputs are float32 R,G,B batches normalised as ``(v - 127.5) * 0.0078125``; outputs are the raw
last-layer values in OpenFace's order (logit non-face, logit face, dx1, dy1, dx2, dy2, then for
ONet five landmark x and five landmark y). Backends know nothing about boxes. Each backend measures
when it is built, on the machine at hand, up to which batch size each net's outputs for one input do not
depend on the batch (``batch_limits``, :mod:`mtcnn_lab.backends.batch_invariance`); the batched cascade
joins images into one network call only up to that size.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from mtcnn_lab.checks import one_of

if TYPE_CHECKING:
    import torch

__all__ = ["Backend", "ClosesOnExit", "DeviceNets", "NetRunner", "ONE_INPUT_PER_CALL", "PRECISIONS", "fp16_nets",
           "precision_suffix"]


class DeviceNets(Protocol):
    """The nets of a backend that takes and returns torch tensors on one device, so that the whole cascade
    can stay there (:mod:`mtcnn_lab.cascade.device`): only frames go in and Detections come out."""

    device: torch.device
    """The device the nets and their inputs live on."""
    batch_limits: Mapping[str, int]
    """As :attr:`Backend.batch_limits`, measured on this device."""
    preferred_batch: int
    """How many frames ``detect_batch`` and ``detect_video`` give the device cascade at once."""

    def run_tensor(self, net: str, batch: torch.Tensor) -> torch.Tensor:
        """``net`` (``pnet``, ``rnet``, ``onet``) on a float32 ``torch.Tensor`` batch on :attr:`device`; the raw
        float32 outputs, on the device (shapes as :meth:`Backend.run_pnet` and the others)."""
        ...


@runtime_checkable
class Backend(Protocol):
    """A runtime that evaluates PNet, RNet and ONet."""

    name: str
    batch_limits: Mapping[str, int]
    """Per net (``pnet``, ``rnet``, ``onet``): the largest batch whose outputs for each input were measured
    equal, bit for bit, to that input's outputs alone (1: batches change the bits)."""
    device_nets: DeviceNets | None
    """The nets as :class:`DeviceNets` when the detector should run the whole cascade on their device
    (the ``torch-cascade`` backends); None when the cascade runs on the host and only calls the nets."""

    def run_pnet(self, images: np.ndarray) -> np.ndarray:
        """(N, 3, h, w) same-size pyramid levels -> (N, 6, h', w') heat maps."""
        ...

    def run_rnet(self, crops: np.ndarray) -> np.ndarray:
        """(N, 3, 24, 24) crops -> (N, 6) outputs."""
        ...

    def run_onet(self, crops: np.ndarray) -> np.ndarray:
        """(N, 3, 48, 48) crops -> (N, 16) outputs."""
        ...

    layer_taps: bool
    """Whether :meth:`run_layers` gives every layer's output (Core ML's compiled programs do not)."""

    def run_layers(self, net: str, batch: np.ndarray) -> dict[str, np.ndarray]:
        """Every layer's output of ``net`` (``pnet``, ``rnet``, ``onet``) on ``batch``, keyed like the
        reference's layer outputs (``l00_conv`` ...); BackendUnavailable when ``layer_taps`` is False."""
        ...

    def close(self) -> None:
        """Release the runtime's models, sessions and files; the backend cannot run afterwards."""
        ...


ONE_INPUT_PER_CALL = MappingProxyType({"pnet": 1, "rnet": 1, "onet": 1})
"""The ``batch_limits`` of a backend that may not join inputs of several images in one call."""


class ClosesOnExit:
    """``with backend: ...`` closes the backend at the end of the block (:meth:`Backend.close`)."""

    def close(self) -> None:
        """Nothing to release beyond what garbage collection frees (runtimes override this)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class NetRunner(ClosesOnExit):
    """The three calls of :class:`Backend` written once, for runtimes that run any net by name.

    Subclasses implement ``_run(net, batch)`` with ``net`` one of ``pnet``, ``rnet``, ``onet``; the runtimes that
    hold models or sessions override ``close``. A backend works as a context manager.
    """

    name: str
    layer_taps = True
    device_nets: DeviceNets | None = None

    def _run(self, net: str, batch: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def run_pnet(self, images: np.ndarray) -> np.ndarray:
        """(N, 3, h, w) -> (N, 6, h', w') PNet heat maps."""
        return self._run("pnet", images)

    def run_rnet(self, crops: np.ndarray) -> np.ndarray:
        """(N, 3, 24, 24) -> (N, 6) RNet outputs."""
        return self._run("rnet", crops)

    def run_onet(self, crops: np.ndarray) -> np.ndarray:
        """(N, 3, 48, 48) -> (N, 16) ONet outputs."""
        return self._run("onet", crops)


PRECISIONS = {"fp32": (), "fp16": ("rnet", "onet"), "fp16-all": ("pnet", "rnet", "onet")}
"""Which nets run in FP16 under each precision policy.

``"fp16"`` keeps PNet in FP32: PNet's box regression in FP16 moves squared proposals across integer
boundaries and so changes later NMS decisions (notebook 04, ``results/tables/04_fp16_end_to_end.csv``).
``"fp16-all"`` runs every net in FP16 (what the Neural Engine can take whole)."""


def fp16_nets(precision: str) -> tuple[str, ...]:
    """The nets that run in FP16 under ``precision`` (one of :data:`PRECISIONS`)."""
    return PRECISIONS[one_of(precision, PRECISIONS, "precision")]


def precision_suffix(precision: str) -> str:
    """``""`` for FP32, else ``"-fp16"`` / ``"-fp16-all"``: the tail of a backend's name."""
    return "" if precision == "fp32" else f"-{precision}"
