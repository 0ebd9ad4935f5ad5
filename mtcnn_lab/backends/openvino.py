"""OpenVINO backend: the graphs of :mod:`mtcnn_lab.nets.openvino` compiled by OpenVINO's CPU plugin
(oneDNN kernels), in FP32. Inputs and outputs follow :mod:`mtcnn_lab.backends.base`.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict

import numpy as np

from mtcnn_lab.backends.base import NetRunner
from mtcnn_lab.backends.batch_invariance import measure_batch_limits
from mtcnn_lab.checks import positive_int
from mtcnn_lab.errors import BackendUnavailable
from mtcnn_lab.nets.openvino import import_openvino, openvino_model
from mtcnn_lab.weights.netspec import NET_NAMES, WeightSet

log = logging.getLogger(__name__)

FIXED_SHAPES = 64
"""Input shapes per net kept compiled for their fixed size (LRU): a video's pyramid needs about 10 PNet
shapes, its frames' ONet crops a few dozen batch sizes."""

FIXED_SHAPE_NETS = {"pnet": (1, 3, 97, 130), "onet": (5, 3, 48, 48)}
"""The nets that get fixed-shape models, and the input shape on which each is checked against the dynamic
model when the backend is built: PNet (pyramid levels recur from frame to frame) and ONet (the most work
per call, over few batch sizes). RNet's batch sizes are too many to compile each."""


CHUNK_ROWS = {"rnet": 128, "onet": 8}
"""Crops per network call: a larger batch is run in chunks of this many rows, whose intermediate
activations stay in the CPU's caches (measured in ``benchmarks/README.md``). The batch limits are measured
through the chunked calls."""


class OpenVinoBackend(NetRunner):
    """Runs PNet/RNet/ONet with OpenVINO on the CPU, in FP32.

    ``threads``: inference threads (default: OpenVINO's choice, one per core). The models take
    any input size. A PNet or ONet input shape seen a second time (a video's pyramid levels, a batch size
    of crops) gets a model compiled for that fixed shape (once): a dynamic-shape model
    re-plans whenever the shape changes. Fixed-shape models are used only for the nets where, when the
    backend was built, they gave the dynamic model's bits (``fixed_shape_nets``), so that a result never
    depends on which shapes came before. ``name`` is ``openvino-cpu``.
    """

    def __init__(self, weights: WeightSet, threads: int | None = None):
        ov, _ = import_openvino()
        positive_int(threads, "threads", optional=True)
        config = {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"}
        if threads is not None:
            config["INFERENCE_NUM_THREADS"] = threads
        self._ov, self.core, self.config, self.weights = ov, ov.Core(), config, weights
        self.compiled = {net: self.core.compile_model(openvino_model(weights.nets()[net]), "CPU", config)
                         for net in NET_NAMES}
        self._local = threading.local()  # one infer request per net and thread: calls are thread-safe
        self._tap_requests: dict[str, object] = {}
        self._seen: dict[str, set[tuple[int, ...]]] = {net: set() for net in FIXED_SHAPE_NETS}
        self._fixed: dict[str, OrderedDict[tuple[int, ...], object]] = {net: OrderedDict() for net in FIXED_SHAPE_NETS}
        self._fixed_lock = threading.Lock()
        self.name = "openvino-cpu"
        self.fixed_shape_nets = frozenset(FIXED_SHAPE_NETS)
        self.fixed_shape_nets = frozenset(net for net in FIXED_SHAPE_NETS if self._fixed_matches_dynamic(net))
        self.batch_limits = measure_batch_limits(self)

    def _fixed_matches_dynamic(self, net: str) -> bool:
        """Whether ``net`` compiled for a fixed shape gives, on this CPU, the bits of the dynamic-shape model."""
        x = np.random.default_rng(0).uniform(-1, 1, FIXED_SHAPE_NETS[net]).astype(np.float32)
        dynamic = self._run(net, x)  # first sight of the shape: the dynamic model
        fixed = self._run(net, x)  # second: compiled for it
        if not np.array_equal(dynamic, fixed):
            log.info("openvino: %s compiled for a fixed shape differs from the dynamic model by %.3g; "
                     "keeping the dynamic model", net, float(np.abs(dynamic - fixed).max()))
            return False
        return True

    def _request(self, net: str):
        requests = getattr(self._local, "requests", None)
        if requests is None:
            requests = self._local.requests = {name: c.create_infer_request() for name, c in self.compiled.items()}
        return requests[net]

    def _fixed_request(self, net: str, shape: tuple[int, ...]):
        """This thread's infer request of ``net`` compiled for ``shape``, or None while the shape is seen once
        (or when ``net`` is not in ``fixed_shape_nets``)."""
        if net not in self.fixed_shape_nets:
            return None
        with self._fixed_lock:
            fixed = self._fixed[net]
            compiled = fixed.get(shape)
            if compiled is None:
                seen = self._seen[net]
                if shape not in seen:
                    if len(seen) >= 16 * FIXED_SHAPES:  # photos of many sizes: stay small
                        seen.clear()
                    seen.add(shape)
                    return None
                model = openvino_model(self.weights.nets()[net])
                model.reshape({0: self._ov.PartialShape(list(shape))})
                compiled = fixed[shape] = self.core.compile_model(model, "CPU", self.config)
                if len(fixed) > FIXED_SHAPES:
                    fixed.popitem(last=False)
            fixed.move_to_end(shape)
        requests = self._local.__dict__.setdefault("fixed", {})
        entry = requests.get((net, shape))
        if entry is None or entry[0] is not compiled:
            entry = requests[net, shape] = (compiled, compiled.create_infer_request())
            if len(requests) > len(FIXED_SHAPE_NETS) * FIXED_SHAPES:
                del requests[next(iter(requests))]
        return entry[1]

    def close(self) -> None:
        """Drop the compiled models and infer requests (OpenVINO frees them with the last reference); running
        a net afterwards raises BackendUnavailable."""
        with self._fixed_lock:
            self.compiled, self._tap_requests = {}, {}
            self._fixed = {net: OrderedDict() for net in FIXED_SHAPE_NETS}
            self._seen = {net: set() for net in FIXED_SHAPE_NETS}
        self._local = threading.local()

    def _compile(self, model):
        return self.core.compile_model(model, "CPU", self.config).create_infer_request()

    def run_layers(self, net: str, batch: np.ndarray) -> dict[str, np.ndarray]:
        """Every layer's output of ``net`` (``pnet``, ``rnet``, ``onet``), keyed like the reference."""
        if net not in self._tap_requests:
            self._tap_requests[net] = self._compile(openvino_model(self.weights.nets()[net], taps=True))
        request = self._tap_requests[net]
        result = request.infer({0: np.ascontiguousarray(batch, np.float32)})
        return {next(iter(port.get_names())): np.array(value, np.float32) for port, value in result.items()}

    def _run(self, net: str, batch: np.ndarray) -> np.ndarray:
        if not self.compiled:
            raise BackendUnavailable("this OpenVINO backend was closed; build a new one")
        if len(batch) == 0:  # the shape of no outputs: from one zero input
            if net == "pnet":
                return self._run(net, np.zeros((1, *batch.shape[1:]), np.float32))[:0]
            return np.zeros((0, 6 if net == "rnet" else 16), np.float32)
        chunk = CHUNK_ROWS.get(net, len(batch))
        if len(batch) > chunk:
            return np.concatenate([self._infer(net, batch[i:i + chunk]) for i in range(0, len(batch), chunk)])
        return self._infer(net, batch)

    def _infer(self, net: str, batch: np.ndarray) -> np.ndarray:
        request = self._fixed_request(net, batch.shape) or self._request(net)
        # a tensor on the caller's array (no input copy); the output buffer is the request's, so it is copied
        request.set_input_tensor(self._ov.Tensor(np.ascontiguousarray(batch, np.float32), shared_memory=True))
        request.infer()
        return request.get_output_tensor(0).data.copy()
