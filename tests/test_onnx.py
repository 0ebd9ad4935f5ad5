"""ONNX export (FP32, FP16, per-layer taps) and the ONNX Runtime backend."""

from __future__ import annotations

import sys
from collections import Counter

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxconverter_common")

from mtcnn_lab.backends.onnx import OPTIMIZATION_LEVELS, OnnxBackend, choose_providers  # noqa: E402
from mtcnn_lab.convert.onnx import ConversionError, OutputExists, export_onnx, fp16_model, onnx_model_bytes  # noqa: E402
from mtcnn_lab.errors import MtcnnLabError, ParameterError  # noqa: E402
from mtcnn_lab.nets import reference  # noqa: E402

TOL = 1e-4
FP16_TOL = 0.05  # measured on the bundled weights: about 0.005 (PNet), 0.002 (RNet), 0.003 (ONet)
CROP = {"rnet": 24, "onet": 48}
# per net: input shapes that exercise the dynamic dims (PNet: two sizes and batch 2; RNet/ONet: batch 1 and 7)
SHAPES = {
    "pnet": [(1, 3, 12, 12), (2, 3, 40, 57), (1, 3, 75, 31)],
    "rnet": [(1, 3, 24, 24), (7, 3, 24, 24)],
    "onet": [(1, 3, 48, 48), (7, 3, 48, 48)],
}
CPU = "CPUExecutionProvider"


def random_batch(shape, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, shape).astype(np.float32)


@pytest.fixture(scope="module")
def models(bundled_weights):
    return {net: onnx_model_bytes(spec) for net, spec in bundled_weights.nets().items()}


@pytest.fixture(scope="module")
def backend(bundled_weights):
    return OnnxBackend(bundled_weights, providers=[CPU], threads=2)


@pytest.fixture(scope="module")
def backend_fp16(bundled_weights):
    return OnnxBackend(bundled_weights, providers=[CPU], threads=2, precision="fp16-all")


# ----------------------------------------------------------------------------------------------
# the exported graphs


@pytest.mark.parametrize("net", ["pnet", "rnet", "onet"])
def test_graph_has_native_prelu_opset_and_dynamic_dims(net, models):
    model = onnx.load_from_string(models[net])
    onnx.checker.check_model(model, full_check=True)
    ops = Counter(node.op_type for node in model.graph.node)
    assert ops["PRelu"] >= 3 and ops["Conv"] >= 3 and ops["MaxPool"] >= 1, ops
    assert not {"Where", "Mul", "Less", "Greater"} & set(ops), ops  # PReLU not decomposed
    assert {o.domain or "ai.onnx": o.version for o in model.opset_import}["ai.onnx"] >= 17
    assert [i.name for i in model.graph.input] == ["input"]
    assert [o.name for o in model.graph.output] == ["output"]
    dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    if net == "pnet":
        assert dims == ["batch", 3, "height", "width"]
    else:
        assert dims == ["batch", 3, CROP[net], CROP[net]]
    assert model.graph.output[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert {p.key: p.value for p in model.metadata_props}["mtcnn_lab.net"] == net


def test_export_is_deterministic(bundled_weights, models):
    assert onnx_model_bytes(bundled_weights.onet) == models["onet"]


def test_opset_below_17_refused(bundled_weights):
    with pytest.raises(ConversionError, match="opset"):
        onnx_model_bytes(bundled_weights.pnet, opset=13)


def test_taps_outputs_named_like_reference(bundled_weights):
    for net, spec in bundled_weights.nets().items():
        model = onnx.load_from_string(onnx_model_bytes(spec, taps=True))
        names = [o.name for o in model.graph.output]
        expected = [k for k in reference.forward_layers(spec, random_batch(SHAPES[net][0])) if k != "in"]
        assert names == expected
        assert "PRelu" in {node.op_type for node in model.graph.node}


# ----------------------------------------------------------------------------------------------
# FP32 backend against the reference CNN


@pytest.mark.parametrize("net", ["pnet", "rnet", "onet"])
def test_backend_matches_reference(net, backend, bundled_weights):
    spec = bundled_weights.nets()[net]
    run = getattr(backend, f"run_{net}")
    for seed, shape in enumerate(SHAPES[net]):
        x = random_batch(shape, seed)
        out, ref = run(x), reference.forward(spec, x)
        assert out.dtype == np.float32 and out.shape == ref.shape
        assert np.abs(out - ref).max() <= TOL, (net, shape, np.abs(out - ref).max())


@pytest.mark.parametrize("net", ["pnet", "rnet", "onet"])
def test_run_layers_matches_reference_every_layer(net, backend, bundled_weights):
    spec = bundled_weights.nets()[net]
    x = random_batch(SHAPES[net][1], 5)
    ours, ref = backend.run_layers(net, x), reference.forward_layers(spec, x)
    assert ours.keys() == ref.keys()
    for key in ref:
        assert ours[key].shape == ref[key].shape, key
        assert np.abs(ours[key] - ref[key]).max() <= TOL, (key, np.abs(ours[key] - ref[key]).max())


def test_backend_name_and_model_dir(tmp_path, bundled_weights, backend):
    assert backend.name == "onnx-cpu"
    paths = export_onnx(bundled_weights, tmp_path)
    assert sorted(p.name for p in paths.values()) == ["onet.onnx", "pnet.onnx", "rnet.onnx"]
    from_files = OnnxBackend(bundled_weights, providers=[CPU], model_dir=tmp_path)
    x = random_batch((3, 3, 48, 48))
    assert np.array_equal(from_files.run_onet(x), backend.run_onet(x))


# ----------------------------------------------------------------------------------------------
# FP16


def test_fp16_model_keeps_float32_io(models):
    model = onnx.load_from_string(fp16_model(models["rnet"]))
    for value in [*model.graph.input, *model.graph.output]:
        assert value.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert {init.data_type for init in model.graph.initializer} == {onnx.TensorProto.FLOAT16}
    session = ort.InferenceSession(model.SerializeToString(), providers=[CPU])
    assert [i.type for i in session.get_inputs()] == ["tensor(float)"]
    assert [o.type for o in session.get_outputs()] == ["tensor(float)"]


@pytest.mark.parametrize("net", ["pnet", "rnet", "onet"])
def test_fp16_backend_close_to_reference(net, backend_fp16, bundled_weights):
    assert backend_fp16.name == "onnx-cpu-fp16-all"
    spec = bundled_weights.nets()[net]
    for seed, shape in enumerate(SHAPES[net]):
        x = random_batch(shape, seed)
        out = getattr(backend_fp16, f"run_{net}")(x)
        assert out.dtype == np.float32
        assert np.abs(out - reference.forward(spec, x)).max() <= FP16_TOL


def test_fp16_run_layers(backend_fp16, bundled_weights):
    x = random_batch((2, 3, 48, 48), 3)
    ours, ref = backend_fp16.run_layers("onet", x), reference.forward_layers(bundled_weights.onet, x)
    assert ours.keys() == ref.keys()
    assert max(np.abs(ours[k] - ref[k]).max() for k in ref) <= FP16_TOL


# ----------------------------------------------------------------------------------------------
# providers, parameters, errors


def test_choose_providers_order():
    assert choose_providers([CPU, "CUDAExecutionProvider"]) == ["CUDAExecutionProvider", CPU]
    assert choose_providers(["CUDAExecutionProvider", CPU, "TensorrtExecutionProvider"]) == [
        "TensorrtExecutionProvider", "CUDAExecutionProvider", CPU]
    assert choose_providers(["CoreMLExecutionProvider", CPU, "AzureExecutionProvider"]) == [
        "CoreMLExecutionProvider", CPU]
    assert choose_providers([]) == [CPU]
    assert choose_providers(["CUDAExecutionProvider"]) == ["CUDAExecutionProvider", CPU]
    here = choose_providers()
    assert here[-1] == CPU and set(here) <= set(ort.get_available_providers())


@pytest.mark.parametrize("level", list(OPTIMIZATION_LEVELS))
def test_optimization_levels(level, bundled_weights):
    x = random_batch((2, 3, 24, 24))
    out = OnnxBackend(bundled_weights, providers=[CPU], threads=1, optimization=level).run_rnet(x)
    assert np.abs(out - reference.forward(bundled_weights.rnet, x)).max() <= TOL


def test_bad_parameters(bundled_weights):
    with pytest.raises(ParameterError, match="disable, basic, extended, all"):
        OnnxBackend(bundled_weights, optimization="max")
    with pytest.raises(ParameterError, match="threads"):
        OnnxBackend(bundled_weights, threads=0)
    with pytest.raises(ParameterError, match="NoSuchExecutionProvider"):
        OnnxBackend(bundled_weights, providers=["NoSuchExecutionProvider"])
    with pytest.raises(ParameterError, match="model"):
        OnnxBackend(bundled_weights, providers=[CPU], model_dir="/nonexistent/folder")


def test_backend_without_onnxruntime(monkeypatch, bundled_weights):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` fail
    from mtcnn_lab.errors import BackendUnavailable

    with pytest.raises(BackendUnavailable, match=r"mtcnn-lab\[onnx\]"):  # backend="auto" moves on
        OnnxBackend(bundled_weights)
    with pytest.raises(BackendUnavailable, match=r"mtcnn-lab\[onnx\]"):
        choose_providers()
    assert choose_providers(["CUDAExecutionProvider"]) == ["CUDAExecutionProvider", CPU]  # no import needed


def test_export_refuses_to_overwrite(tmp_path, bundled_weights):
    paths = export_onnx(bundled_weights, tmp_path / "out", fp16=True)
    assert sorted(p.name for p in paths.values()) == ["onet_fp16.onnx", "pnet_fp16.onnx", "rnet_fp16.onnx"]
    before = {p: p.read_bytes() for p in paths.values()}
    paths["rnet"].write_bytes(b"mine")
    before[paths["rnet"]] = b"mine"
    with pytest.raises(OutputExists, match="pnet_fp16.onnx") as info:
        export_onnx(bundled_weights, tmp_path / "out", fp16=True)
    assert isinstance(info.value, MtcnnLabError)
    assert {p: p.read_bytes() for p in paths.values()} == before
    assert sorted(f.name for f in (tmp_path / "out").iterdir()) == sorted(p.name for p in paths.values())
    export_onnx(bundled_weights, tmp_path / "out", fp16=True, overwrite=True)
    assert paths["rnet"].read_bytes() != b"mine"
    onnx.checker.check_model(onnx.load(paths["rnet"]))


def test_export_and_convert_work_without_torch(tmp_path):
    """The graphs are built from the NetSpec: a process where importing torch fails still exports (FP32 and
    FP16, through the CLI), and the files run in ONNX Runtime with the reference's outputs."""
    import subprocess

    code = ("import sys; sys.modules['torch'] = None\n"
            "from mtcnn_lab.cli import main\n"
            f"sys.exit(main(['convert', '--to', 'onnx', {str(tmp_path)!r}]) or "
            f"main(['convert', '--to', 'onnx', '--fp16', {str(tmp_path)!r}]))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    from mtcnn_lab.weights.sets import load_weights

    weights = load_weights("zhang2016")
    x = np.random.default_rng(5).uniform(-1, 1, (4, 3, 48, 48)).astype(np.float32)
    for name, atol in (("onet.onnx", 1e-5), ("onet_fp16.onnx", 0.05)):
        session = ort.InferenceSession(str(tmp_path / name), providers=["CPUExecutionProvider"])
        np.testing.assert_allclose(session.run(None, {"input": x})[0], reference.forward(weights.onet, x), atol=atol)

