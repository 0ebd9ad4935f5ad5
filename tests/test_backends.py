"""Every backend against the numpy reference, layer by layer, and the ``auto`` fallback chain."""

from __future__ import annotations

import logging
import re
import sys

import numpy as np
import pytest

from mtcnn_lab.backends import select
from mtcnn_lab.backends.numpy import NumpyBackend
from mtcnn_lab.errors import BackendUnavailable, ParameterError
from mtcnn_lab.lab.layers import backend_layer_differences

FP32_BACKENDS = ["torch", "onnx", "openvino"]
INPUTS = {"pnet": (2, 3, 57, 83), "rnet": (5, 3, 24, 24), "onet": (5, 3, 48, 48)}


def batch(net: str) -> np.ndarray:
    return np.random.default_rng(7).uniform(-1, 1, INPUTS[net]).astype(np.float32)


@pytest.fixture(scope="module", params=FP32_BACKENDS)
def fp32_backend(request, bundled_weights):
    try:
        return select.make_backend(request.param, bundled_weights)
    except BackendUnavailable as err:
        pytest.skip(f"{request.param} not available here: {err}")


@pytest.mark.parametrize("net", ["pnet", "rnet", "onet"])
def test_fp32_backend_every_layer_within_1e4(fp32_backend, net, bundled_weights):
    table = backend_layer_differences(fp32_backend, bundled_weights, net, batch(net))
    layers = set(bundled_weights.nets()[net].layer_keys())
    assert layers <= set(table), f"{fp32_backend.name} does not report {layers - set(table)}"
    worst = {k: v["max_abs"] for k, v in table.items() if v["max_abs"] > 1e-4}
    assert not worst, f"{fp32_backend.name} {net}: {worst}"


@pytest.mark.parametrize("net", ["pnet", "rnet", "onet"])
def test_fp16_emulation_rounds_every_layer(net, bundled_weights):
    emulation = NumpyBackend(bundled_weights, "fp16-all")
    for key, value in emulation.run_layers(net, batch(net)).items():
        assert np.array_equal(value, value.astype(np.float16).astype(np.float32)), key
    table = backend_layer_differences(emulation, bundled_weights, net, batch(net))
    assert 0 < table["output"]["max_abs"] < select.FP16_TOLERANCE


def test_auto_picks_the_first_candidate_that_passes(monkeypatch, bundled_weights, caplog):
    def broken(weights, threads):
        raise RuntimeError("driver exploded")

    class Wrong(NumpyBackend):
        def run_rnet(self, crops):
            return super().run_rnet(crops) + 1.0

    chain = {"coreml": select.BackendChoice("coreml", broken, 0.1, "broken"),
             "onnx": select.BackendChoice("onnx", lambda w, t: Wrong(w), 1e-4, "disagrees"),
             "numpy": select.CHOICES["numpy"]}
    monkeypatch.setattr(select, "CHOICES", chain)
    monkeypatch.setattr(select, "AUTO_ORDER", ("coreml", "onnx", "numpy"))
    with caplog.at_level(logging.INFO, logger="mtcnn_lab.backends.select"):
        backend = select.make_backend("auto", bundled_weights)
    assert backend.name == "numpy"
    assert "driver exploded" in caplog.text and "disagrees with the numpy reference by 1" in caplog.text


class ClosingNumpy(NumpyBackend):
    """The numpy reference, counting its closes; ``shift`` is added to RNet's outputs (0: agrees)."""

    closed: list[str] = []

    def __init__(self, weights, shift: float = 0.0, name: str = "numpy"):
        self.shift, self.label = shift, name
        super().__init__(weights)

    def run_rnet(self, crops):
        return super().run_rnet(crops) + self.shift

    def close(self) -> None:
        ClosingNumpy.closed.append(self.label)


def test_a_backend_built_but_refused_or_only_reported_is_closed(monkeypatch, bundled_weights):
    ClosingNumpy.closed = []

    def crashes(weights, threads):
        backend = ClosingNumpy(weights, name="crashes")
        backend.run_onet = None  # the self-check's call fails in the runtime's own way (TypeError)
        return backend

    chain = {"wrong": select.BackendChoice("wrong", lambda w, t: ClosingNumpy(w, 1.0, "wrong"), 1e-4, "disagrees"),
             "crashes": select.BackendChoice("crashes", crashes, 1e-4, "crashes"),
             "good": select.BackendChoice("good", lambda w, t: ClosingNumpy(w, name="good"), 1e-4, "agrees")}
    monkeypatch.setattr(select, "CHOICES", chain)
    with pytest.raises(BackendUnavailable, match="disagrees"):
        select.build_checked("wrong", bundled_weights)
    with pytest.raises(BackendUnavailable, match="crashes failed: TypeError"):
        select.build_checked("crashes", bundled_weights)
    assert ClosingNumpy.closed == ["wrong", "crashes"]
    backend, _ = select.build_checked("good", bundled_weights)
    assert ClosingNumpy.closed == ["wrong", "crashes"]  # the one handed out stays open
    rows = select.backend_report(bundled_weights)
    assert [r["available"] for r in rows] == [False, False, True]
    assert ClosingNumpy.closed == ["wrong", "crashes", "wrong", "crashes", "good"]
    with backend as same:
        assert same is backend
    assert ClosingNumpy.closed[-1] == "good"


def test_torch_on_the_gpu_is_skipped_without_loading_torch_when_linux_has_no_gpu_driver(monkeypatch, bundled_weights):
    monkeypatch.setattr(select.sys, "platform", "linux")
    monkeypatch.setattr(select, "GPU_DRIVER_FILES", ("/nonexistent/nvidia",))
    monkeypatch.delitem(select.sys.modules, "torch", raising=False)
    assert not select.gpu_driver_present()
    for name in ("torch-gpu", "torch-cuda", "torch-cuda-fp16", "torch-cascade-cuda"):
        with pytest.raises(BackendUnavailable, match="no GPU driver"):
            select.build_checked(name, bundled_weights)
    assert "torch" not in select.sys.modules


def test_a_gpu_driver_file_lets_torch_look_for_the_gpu(monkeypatch, tmp_path):
    monkeypatch.setattr(select.sys, "platform", "linux")
    monkeypatch.setattr(select, "GPU_DRIVER_FILES", ("/nonexistent/nvidia", str(tmp_path)))
    assert select.gpu_driver_present()
    monkeypatch.setattr(select.sys, "platform", "darwin")
    monkeypatch.setattr(select, "GPU_DRIVER_FILES", ())
    assert select.gpu_driver_present()  # MPS: only torch can tell


def test_backend_report_explains_every_unavailable_backend(bundled_weights):
    rows = {r["backend"]: r for r in select.backend_report(bundled_weights)}
    assert set(rows) == set(select.CHOICES)
    assert rows["numpy"]["available"] and rows["numpy"]["max_abs_diff"] == 0.0
    for row in rows.values():
        assert row["available"] or row["reason"], row


def test_unknown_backend_lists_the_names(bundled_weights):
    with pytest.raises(ParameterError, match="numpy") as info:
        select.make_backend("tensorflow", bundled_weights)
    assert "auto" in str(info.value) and "onnx" in str(info.value)


def test_openvino_compiles_a_repeated_pnet_shape_for_its_size(bundled_weights):
    try:
        backend = select.make_backend("openvino", bundled_weights)
    except BackendUnavailable as err:
        pytest.skip(f"openvino not available here: {err}")
    reference = NumpyBackend(bundled_weights).run_pnet(batch("pnet"))
    other = np.zeros((1, 3, 30, 40), np.float32)
    before = set(backend._fixed["pnet"])  # what the backend's own measurements compiled
    outputs = [backend.run_pnet(x) for x in (batch("pnet"), other, batch("pnet"), other, batch("pnet"))]
    assert set(backend._fixed["pnet"]) - before == {INPUTS["pnet"], other.shape}  # each compiled on its second call
    for out in outputs[::2]:  # dynamic, then static model: both agree with the reference
        np.testing.assert_allclose(out, reference, rtol=0, atol=1e-4)
    if "pnet" in backend.fixed_shape_nets:  # measured when built: then the two models give the same bits
        assert np.array_equal(outputs[0], outputs[2]) and np.array_equal(outputs[2], outputs[4])


def test_openvino_without_fixed_shape_models_keeps_the_dynamic_one(bundled_weights):
    """What the backend does on a CPU where a fixed-shape PNet gives other bits than the dynamic model."""
    backend = select.make_backend("openvino", bundled_weights)
    backend.fixed_shape_nets = frozenset()
    before = set(backend._fixed["pnet"])
    shape = np.zeros((1, 3, 33, 47), np.float32)
    outputs = [backend.run_pnet(shape) for _ in range(3)]
    assert set(backend._fixed["pnet"]) == before
    assert all(np.array_equal(outputs[0], out) for out in outputs)


def test_openvino_compiles_a_repeated_onet_batch_size_and_keeps_its_bits(bundled_weights):
    backend = select.make_backend("openvino", bundled_weights)
    crops = np.random.default_rng(3).uniform(-1, 1, (6, 3, 48, 48)).astype(np.float32)  # one chunk
    before = set(backend._fixed["onet"])
    outputs = [backend.run_onet(crops) for _ in range(3)]
    if "onet" in backend.fixed_shape_nets:  # measured when built to give the dynamic model's bits
        assert set(backend._fixed["onet"]) - before == {crops.shape}
        assert all(np.array_equal(outputs[0], out) for out in outputs)
    else:
        assert set(backend._fixed["onet"]) == before
    np.testing.assert_allclose(outputs[-1], NumpyBackend(bundled_weights).run_onet(crops), rtol=0, atol=1e-4)


@pytest.mark.parametrize(("net", "size"), [("rnet", 24), ("onet", 48)])
def test_openvino_runs_large_batches_in_chunks(bundled_weights, monkeypatch, net, size):
    from mtcnn_lab.backends.openvino import CHUNK_ROWS

    backend = select.make_backend("openvino", bundled_weights)
    chunk = CHUNK_ROWS[net]
    crops = np.random.default_rng(4).uniform(-1, 1, (2 * chunk + 3, 3, size, size)).astype(np.float32)
    calls = []
    infer = backend._infer
    monkeypatch.setattr(backend, "_infer", lambda n, batch: calls.append(len(batch)) or infer(n, batch))
    outputs = backend._run(net, crops)
    assert calls == [chunk, chunk, 3]
    np.testing.assert_array_equal(outputs, np.concatenate([infer(net, crops[i:i + chunk])
                                                           for i in range(0, len(crops), chunk)]))
    reference = NumpyBackend(bundled_weights)._run(net, crops)
    np.testing.assert_allclose(outputs, reference, rtol=0, atol=1e-4)


def test_openvino_takes_an_empty_batch_and_refuses_to_run_once_closed(bundled_weights):
    backend = select.make_backend("openvino", bundled_weights)
    reference = NumpyBackend(bundled_weights)
    empty = np.zeros((0, 3, 24, 40), np.float32)
    assert backend.run_pnet(empty).shape == reference.run_pnet(empty).shape
    assert backend.run_onet(np.zeros((0, 3, 48, 48), np.float32)).shape == (0, 16)
    backend.close()
    with pytest.raises(BackendUnavailable, match="closed"):
        backend.run_rnet(np.zeros((2, 3, 24, 24), np.float32))
    with select.make_backend("openvino", bundled_weights) as scoped:
        assert scoped.run_rnet(np.zeros((1, 3, 24, 24), np.float32)).shape == (1, 6)
    with pytest.raises(BackendUnavailable, match="closed"):
        scoped.run_rnet(np.zeros((1, 3, 24, 24), np.float32))


@pytest.mark.parametrize(("name", "module", "install"), [
    ("openvino", "mtcnn_lab.backends.openvino", "pip install 'mtcnn-lab[openvino]'"),
    ("onnx", "mtcnn_lab.backends.onnx", "pip install 'mtcnn-lab[onnx]'"),
    ("torch", "mtcnn_lab.backends.torch", "pip install 'mtcnn-lab[torch]'"),
])
def test_a_missing_runtime_says_what_to_install(monkeypatch, bundled_weights, name, module, install):
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if the runtime were not installed
    with pytest.raises(BackendUnavailable, match=rf"is not installed .*; {re.escape(install)}"):
        select.build_checked(name, bundled_weights)
