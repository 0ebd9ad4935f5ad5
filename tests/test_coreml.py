"""Tests of the Core ML export (:mod:`mtcnn_lab.convert.coreml`) and backend (:mod:`mtcnn_lab.backends.coreml`).

Conversion runs anywhere coremltools installs; the saved ``.mlpackage`` files are inspected through
their protobuf spec (``MLModel(path, skip_model_load=True)``): model type, input shapes, IO types and
the MIL program's dtypes. Prediction needs macOS, so off macOS the backend's refusal is tested and
the parity tests are skipped.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from mtcnn_lab.backends.coreml import CoreMLBackend, coreml_available
from mtcnn_lab.convert.coreml import (
    COMPUTE_UNITS,
    DEFAULT_FRAME_SIZES,
    MAX_ENUMERATED_SHAPES,
    METADATA_PREFIX,
    ConversionError,
    convert_coreml,
    import_coremltools,
    net_digest,
    pnet_input_shapes,
    tree_bytes,
)
from mtcnn_lab.errors import BackendUnavailable, MtcnnLabError, OutputExists, ParameterError
from mtcnn_lab.params import level_size, pyramid_scales
from mtcnn_lab.weights.netspec import NET_NAMES

try:
    ct = import_coremltools()
except ConversionError as err:
    pytest.skip(f"Core ML conversion needs coremltools (pip install -e '.[dev]'): {err}", allow_module_level=True)

from coremltools.proto import MIL_pb2  # noqa: E402

FP16, FP32 = MIL_pb2.DataType.FLOAT16, MIL_pb2.DataType.FLOAT32
MAX_BATCH = 256
OUT_CHANNELS = {"pnet": 6, "rnet": 6, "onet": 16}


@pytest.fixture(scope="module")
def converted(tmp_path_factory, bundled_weights):
    """Both precisions converted once into one folder: ``{precision: convert_coreml's dict}``."""
    outdir = tmp_path_factory.mktemp("coreml")
    return {precision: convert_coreml(bundled_weights, outdir, precision, max_batch=MAX_BATCH)
            for precision in ("fp32", "fp16")}


@pytest.fixture(scope="module")
def specs(converted):
    """``{(precision, net): Model spec}`` of the saved packages (loaded without Core ML)."""
    return {(precision, net): ct.models.MLModel(str(paths[net]), skip_model_load=True).get_spec()
            for precision, paths in converted.items() for net in NET_NAMES}


def program_ops(spec):
    """The operations of the ML program's ``main`` function."""
    main = spec.mlProgram.functions["main"]
    return list(main.block_specializations[main.opset].operations)


def float_dtypes(spec) -> tuple[set[int], set[int]]:
    """(dtypes of float constants, dtypes of float values computed by non-const ops)."""
    floats = {FP16, FP32, MIL_pb2.DataType.FLOAT64}
    constants, computed = set(), set()
    for op in program_ops(spec):
        if op.type == "const":
            constants.add(op.attributes["val"].type.tensorType.dataType)
            continue
        computed.update(out.type.tensorType.dataType for out in op.outputs)
        for argument in op.inputs.values():  # immediate values bound inline, if any
            constants.update(b.value.type.tensorType.dataType for b in argument.arguments if b.HasField("value"))
    return constants & floats, computed & floats


def const_value(spec, name: str):
    """The immediate value of the const op whose output is ``name``."""
    for op in program_ops(spec):
        if op.type == "const" and op.outputs[0].name == name:
            value = op.attributes["val"].immediateValue.tensor
            field = value.WhichOneof("value")
            return list(getattr(value, field).values)
    raise KeyError(name)


# --------------------------------------------------------------------------------------------
# shapes and parameters (no conversion)


def test_pnet_input_shapes_are_the_pyramid_levels():
    shapes = pnet_input_shapes()
    expected = {(1, 3, *level_size(h, w, s)) for w, h in DEFAULT_FRAME_SIZES for s in pyramid_scales(h, w)}
    assert set(shapes) == expected
    assert len(shapes) == len(set(shapes)) == 33  # 9 + 9 + 8 + 7 levels, all distinct
    assert shapes[0] == (1, 3, 216, 384) or shapes[0] == (1, 3, 384, 216)
    assert {(1, 3, 14, 25), (1, 3, 25, 14), (1, 3, 13, 17)} <= set(shapes)
    assert len(shapes) <= MAX_ENUMERATED_SHAPES
    assert pnet_input_shapes([(640, 480)]) == [(1, 3, *level_size(480, 640, s)) for s in pyramid_scales(480, 640)]
    assert pnet_input_shapes([(30, 30)]) == pnet_input_shapes([(64, 48)]) == []  # too small for min_face 60
    assert pnet_input_shapes([(80, 64)]) == [(1, 3, 13, 16)]


@pytest.mark.parametrize("kwargs, words", [
    ({"compute_units": "NEURAL_ENGINE"}, ["NEURAL_ENGINE", *COMPUTE_UNITS]),
    ({"precision": "int8"}, ["int8", "fp32", "fp16"]),
    ({"max_batch": 0}, ["max_batch"]),
    ({"frame_sizes": [(640, "x")]}, ["frame size"]),
    ({"frame_sizes": [(30, 30)]}, ["too small"]),
    ({"frame_sizes": [(w, 480) for w in range(481, 1200, 7)]}, ["PNet input shapes", str(MAX_ENUMERATED_SHAPES)]),
])
def test_bad_parameters_are_refused_before_converting(tmp_path, bundled_weights, kwargs, words):
    with pytest.raises(ParameterError) as info:
        convert_coreml(bundled_weights, tmp_path / "out", **kwargs)
    message = str(info.value)
    assert "\n" not in message and all(word in message for word in words)
    assert not (tmp_path / "out").exists()


def test_compute_units_are_case_insensitive_and_validated_by_the_backend_too(bundled_weights):
    with pytest.raises(ParameterError, match="CPU_AND_NE"):
        CoreMLBackend(bundled_weights, compute_units="GPU")
    with pytest.raises(ParameterError, match="fp16"):
        CoreMLBackend(bundled_weights, precision="bf16")


def test_conversion_needs_no_torch(tmp_path):
    """The programs are built from the NetSpecs with the MIL builder: a process where importing torch fails
    converts (the CLI, FP32 and FP16), and the FP32 programs, executed, give the reference's outputs."""
    import subprocess

    from mtcnn_lab.nets import reference
    from mtcnn_lab.nets.mil import MilProgram
    from mtcnn_lab.weights.sets import load_weights

    code = ("import sys; sys.modules['torch'] = None\n"
            "from mtcnn_lab.cli import main\n"
            f"sys.exit(main(['convert', '--to', 'coreml', {str(tmp_path)!r}]) or "
            f"main(['convert', '--to', 'coreml', '--fp16', {str(tmp_path)!r}]))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    weights = load_weights("zhang2016")
    x = np.random.default_rng(6).uniform(-1, 1, (3, 3, 24, 24)).astype(np.float32)
    assert np.abs(MilProgram(tmp_path / "rnet.mlpackage").run(x) - reference.forward(weights.rnet, x)).max() <= 1e-5
    assert (tmp_path / "onet_fp16.mlpackage").is_dir()


# --------------------------------------------------------------------------------------------
# the converted packages


def test_files_and_report(converted, bundled_weights):
    outdir = converted["fp32"]["pnet"].parent
    names = sorted(p.name for p in outdir.iterdir())
    assert names == sorted([f"{n}{s}.mlpackage" for n in NET_NAMES for s in ("", "_fp16")]
                           + ["coreml_report.json", "coreml_report_fp16.json"])  # no staging folder left
    for precision, paths in converted.items():
        assert set(paths) == {*NET_NAMES, "report"}
        report = json.loads(paths["report"].read_text())
        assert report["coremltools"] == ct.__version__
        assert report["precision"] == precision and report["compute_units"] == "ALL"
        assert report["weights"] == bundled_weights.name
        assert [tuple(s) for s in report["models"]["pnet"]["input_shapes"]] == pnet_input_shapes()
        assert report["models"]["onet"]["input_shape"] == [[1, MAX_BATCH], 3, 48, 48]
        for net in NET_NAMES:
            assert report["models"][net]["bytes"] == tree_bytes(paths[net]) > 0
            assert (paths[net] / "Manifest.json").is_file()


def test_model_type_is_ml_program(specs):
    for spec in specs.values():
        assert spec.WhichOneof("Type") == "mlProgram"
        assert spec.specificationVersion >= 7  # macOS 13 / iOS 16
        assert spec.mlProgram.functions["main"].opset == "CoreML6"


def test_pnet_input_is_the_enumerated_pyramid_level_set(specs):
    for precision in ("fp32", "fp16"):
        array = specs[precision, "pnet"].description.input[0].type.multiArrayType
        assert array.WhichOneof("ShapeFlexibility") == "enumeratedShapes"
        enumerated = [tuple(s.shape) for s in array.enumeratedShapes.shapes]
        assert enumerated == pnet_input_shapes()
        assert tuple(array.shape) == pnet_input_shapes()[0]  # the default shape


def test_rnet_onet_batch_range(specs):
    for (_, net), spec in specs.items():
        if net == "pnet":
            continue
        side = 24 if net == "rnet" else 48
        array = spec.description.input[0].type.multiArrayType
        assert array.WhichOneof("ShapeFlexibility") == "shapeRange"
        ranges = [(r.lowerBound, r.upperBound) for r in array.shapeRange.sizeRanges]
        assert ranges == [(1, MAX_BATCH), (3, 3), (side, side), (side, side)]


def test_io_names_and_types_are_float32(specs):
    for spec in specs.values():
        (inp,), (out,) = spec.description.input, spec.description.output
        assert (inp.name, out.name) == ("input", "output")
        assert inp.type.multiArrayType.dataType == out.type.multiArrayType.dataType == \
            ct.proto.FeatureTypes_pb2.ArrayFeatureType.FLOAT32
        assert spec.mlProgram.functions["main"].inputs[0].type.tensorType.dataType == FP32


def test_fp32_models_have_no_fp16(specs):
    for net in NET_NAMES:
        spec = specs["fp32", net]
        constants, computed = float_dtypes(spec)
        assert constants == computed == {FP32}
        assert not [op for op in program_ops(spec) if op.type == "cast"]


def test_fp16_models_compute_in_fp16_between_two_casts(specs, converted):
    for net in NET_NAMES:
        spec = specs["fp16", net]
        constants, computed = float_dtypes(spec)
        assert constants == {FP16}  # every weight, bias and slope is stored as float16
        ops = [op for op in program_ops(spec) if op.type != "const"]
        casts = [op for op in ops if op.type == "cast"]
        assert [ops.index(c) for c in casts] == [0, len(ops) - 1]  # cast in first, cast out last
        assert casts[0].inputs["x"].arguments[0].name == "input"
        assert casts[0].outputs[0].type.tensorType.dataType == FP16
        assert casts[1].outputs[0].name == "output" and casts[1].outputs[0].type.tensorType.dataType == FP32
        assert all(out.type.tensorType.dataType == FP16 for op in ops[1:-1] for out in op.outputs)
        # and the weight blobs are half the size of the FP32 ones
        blob = "Data/com.apple.CoreML/weights/weight.bin"
        fp16_bytes = (converted["fp16"][net] / blob).stat().st_size
        fp32_bytes = (converted["fp32"][net] / blob).stat().st_size
        assert fp16_bytes < 0.56 * fp32_bytes


def test_programs_keep_openface_semantics(specs):
    """Ceil-mode pooling everywhere; RNet/ONet flatten each map transposed (OpenFace's order)."""
    for (_, net), spec in specs.items():
        ops = [op for op in program_ops(spec) if op.type != "const"]
        pools = [op for op in ops if op.type == "max_pool"]
        assert len(pools) == {"pnet": 1, "rnet": 2, "onet": 3}[net]
        for pool in pools:
            assert const_value(spec, pool.inputs["ceil_mode"].arguments[0].name) == [True]
            assert const_value(spec, pool.inputs["strides"].arguments[0].name) == [2, 2]
        kinds = [op.type for op in ops if op.type not in ("cast", "expand_dims", "squeeze")]
        if net == "pnet":
            assert "transpose" not in kinds and "linear" not in kinds
        else:
            transpose = next(op for op in ops if op.type == "transpose")
            assert const_value(spec, transpose.inputs["perm"].arguments[0].name) == [0, 1, 3, 2]
            assert kinds[kinds.index("transpose") + 1] == "reshape"
            assert kinds[kinds.index("reshape") + 1] == "linear"


def test_metadata_names_weights_and_compute_units(specs, bundled_weights):
    for (precision, net), spec in specs.items():
        meta = dict(spec.description.metadata.userDefined)
        assert meta[METADATA_PREFIX + "net"] == net
        assert meta[METADATA_PREFIX + "precision"] == precision
        assert meta[METADATA_PREFIX + "compute_units"] == "ALL"
        assert meta[METADATA_PREFIX + "weights_sha256"] == net_digest(bundled_weights.nets()[net])


def test_refuses_to_overwrite(converted, bundled_weights):
    outdir = converted["fp16"]["pnet"].parent
    before = {p.name: p.stat().st_mtime_ns for p in outdir.iterdir()}
    with pytest.raises(OutputExists) as info:
        convert_coreml(bundled_weights, outdir, "fp16")
    assert isinstance(info.value, MtcnnLabError) and isinstance(info.value, FileExistsError)
    assert str(converted["fp16"]["pnet"]) in str(info.value) and "overwrite=True" in str(info.value)
    assert {p.name: p.stat().st_mtime_ns for p in outdir.iterdir()} == before


def test_overwrite_replaces_and_leaves_nothing_behind(tmp_path, bundled_weights):
    stale = tmp_path / "rnet_fp16.mlpackage"
    stale.mkdir()
    (stale / "junk").write_text("old")
    paths = convert_coreml(bundled_weights, tmp_path, "fp16", frame_sizes=[(80, 64)], max_batch=1,
                           compute_units="cpu_only", overwrite=True)
    assert not (paths["rnet"] / "junk").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in paths.values())
    spec = ct.models.MLModel(str(paths["rnet"]), skip_model_load=True).get_spec()
    assert tuple(spec.description.input[0].type.multiArrayType.shape) == (1, 3, 24, 24)  # max_batch=1: fixed
    pnet = ct.models.MLModel(str(paths["pnet"]), skip_model_load=True).get_spec()
    assert tuple(pnet.description.input[0].type.multiArrayType.shape) == pnet_input_shapes([(80, 64)])[0]
    assert dict(pnet.description.metadata.userDefined)[METADATA_PREFIX + "compute_units"] == "CPU_ONLY"


# --------------------------------------------------------------------------------------------
# the backend


@pytest.mark.skipif(sys.platform == "darwin", reason="checks the refusal off macOS")
def test_backend_refuses_off_macos(bundled_weights):
    available, reason = coreml_available()
    assert available is False and "macOS" in reason and "mtcnn-lab convert --to coreml" in reason
    with pytest.raises(BackendUnavailable) as info:
        CoreMLBackend(bundled_weights)
    assert isinstance(info.value, MtcnnLabError)
    message = str(info.value)
    assert "\n" not in message and "macOS" in message and "mtcnn-lab convert --to coreml" in message


needs_coreml = pytest.mark.skipif(not coreml_available()[0], reason=coreml_available()[1])


@needs_coreml
@pytest.mark.parametrize("precision, atol", [("fp32", 1e-3), ("fp16", 0.1)])
def test_backend_matches_reference_on_macos(converted, bundled_weights, precision, atol):
    from mtcnn_lab.backends.numpy import NumpyBackend

    outdir = converted[precision]["pnet"].parent
    backend = CoreMLBackend(bundled_weights, precision, "CPU_ONLY" if precision == "fp32" else None, outdir)
    assert backend.name == f"coreml-{precision}-{'CPU_ONLY' if precision == 'fp32' else 'ALL'}"
    reference = NumpyBackend(bundled_weights)
    rng = np.random.default_rng(1)
    level = rng.uniform(-1, 1, (2, 3, 96, 128)).astype(np.float32)
    np.testing.assert_allclose(backend.run_pnet(level), reference.run_pnet(level), atol=atol)
    for net, side in (("rnet", 24), ("onet", 48)):
        crops = rng.uniform(-1, 1, (MAX_BATCH + 3, 3, side, side)).astype(np.float32)  # split into 2 calls
        got = getattr(backend, f"run_{net}")(crops)
        assert got.shape == (len(crops), OUT_CHANNELS[net]) and got.dtype == np.float32
        np.testing.assert_allclose(got, getattr(reference, f"run_{net}")(crops), atol=atol)
        assert getattr(backend, f"run_{net}")(crops[:0]).shape == (0, OUT_CHANNELS[net])


@needs_coreml
def test_backend_falls_back_for_unknown_pnet_shapes_on_macos(converted, bundled_weights):
    from mtcnn_lab.backends.coreml import CoreMLShapeWarning

    outdir = converted["fp16"]["pnet"].parent
    level = np.zeros((1, 3, 50, 50), np.float32)
    backend = CoreMLBackend(bundled_weights, "fp16", model_dir=outdir)
    with pytest.warns(CoreMLShapeWarning):
        assert backend.run_pnet(level).shape == (1, 6, 20, 20)
    assert backend.fallback_shapes == {(1, 3, 50, 50)}
    strict = CoreMLBackend(bundled_weights, "fp16", model_dir=outdir, strict_shapes=True)
    with pytest.raises(ParameterError, match="enumerated"):
        strict.run_pnet(level)


def test_a_pooling_stride_other_than_2_is_refused_by_both_converters(bundled_weights):
    """Ceil rounding gives OpenFace's pooled size only for stride 2 (a 22-wide map pools to 8 with ceil at
    stride 3, to 7 in OpenFace)."""
    from dataclasses import replace

    from mtcnn_lab.convert.coreml import mil_program
    from mtcnn_lab.convert.onnx import onnx_model_bytes
    from mtcnn_lab.weights.netspec import MaxPool

    spec = bundled_weights.rnet
    odd = replace(spec, layers=tuple(MaxPool(3, 3, 3, 3) if isinstance(layer, MaxPool) else layer
                                     for layer in spec.layers))
    for build in (mil_program, onnx_model_bytes):
        with pytest.raises(ConversionError, match="only stride-2 max-pooling"):
            build(odd)
