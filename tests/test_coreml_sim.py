"""The saved Core ML programs executed off the Mac (:mod:`mtcnn_lab.nets.mil`, backends ``coreml-sim*``).

The executor's outputs are compared with the numpy reference on real pyramid levels and crops (FP32: every
output within 1e-5), the ``coreml-sim-fp32`` cascade with C++ OpenFace on the 50 dev inputs, and the FP16
programs with the FP32 ones end to end. Damaged packages, unknown ops and wrong shapes are one-line errors.
On macOS the executor is compared with Core ML's own predictions.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from mtcnn_lab.backends import select
from mtcnn_lab.backends.coreml import CoreMLBackend, coreml_available
from mtcnn_lab.backends.numpy import NumpyBackend
from mtcnn_lab.cascade.crops import crop_boxes
from mtcnn_lab.cascade.pyramid import pyramid_levels
from mtcnn_lab.cascade.stages import run_cascade
from mtcnn_lab.detector import MTCNN
from mtcnn_lab.errors import ConversionError, ParameterError
from mtcnn_lab.io.images import read_image
from mtcnn_lab.lab.agreement import agreement, summarise_agreement

from .conftest import SAMPLES, require_shared
from .test_parity import PX, dev_entries

ct = pytest.importorskip("coremltools", reason="coremltools is in the dev extra (pip install -e '.[dev]')")

from mtcnn_lab.convert.coreml import convert_coreml  # noqa: E402
from mtcnn_lab.nets.mil import OPS, MilProgram  # noqa: E402

HOPPER_WH = (512, 600)


def frame_sizes() -> list[tuple[int, int]]:
    """The dev inputs' sizes (width, height) and the hopper's: every PNet level is an enumerated shape."""
    return sorted({(e["width"], e["height"]) for e in dev_entries()} | {HOPPER_WH})


@pytest.fixture(scope="module")
def programs(tmp_path_factory, bundled_weights):
    """FP32 and FP16 programs converted once, for the dev and hopper frame sizes: {precision: {net: path}}."""
    outdir = tmp_path_factory.mktemp("coreml-sim")
    return {precision: convert_coreml(bundled_weights, outdir, precision, frame_sizes=frame_sizes())
            for precision in ("fp32", "fp16")}


def real_inputs(image, weights) -> dict[str, np.ndarray]:
    """A real pyramid level, RNet crops and ONet crops of ``image`` (from the numpy cascade's candidates)."""
    faces = run_cascade(image, NumpyBackend(weights), trace=True)
    level = pyramid_levels(image)[1][1][None]
    return {"pnet": level, "rnet": crop_boxes(image, np.array(faces.trace["rnet_input_boxes"]), 24),
            "onet": crop_boxes(image, np.array(faces.trace["onet_input_boxes"]).reshape(-1, 4), 48)}


def test_the_programs_use_only_the_implemented_ops(programs):
    for precision, paths in programs.items():
        for net, path in paths.items():
            if net in ("pnet", "rnet", "onet"):
                assert set(MilProgram(path).op_types) <= set(OPS), (precision, net)


def test_fp32_programs_equal_the_reference_within_1e_5(programs, bundled_weights, hopper):
    reference = NumpyBackend(bundled_weights)
    for net, x in real_inputs(hopper, bundled_weights).items():
        assert len(x) > 0, net
        got = MilProgram(programs["fp32"][net]).run(x)
        expected = reference._run(net, x)
        assert np.abs(got.reshape(expected.shape) - expected).max() <= 1e-5, net


def test_fp16_programs_store_every_output_in_float16(programs, bundled_weights, hopper):
    reference = NumpyBackend(bundled_weights)
    for net, x in real_inputs(hopper, bundled_weights).items():
        got = MilProgram(programs["fp16"][net]).run(x)
        np.testing.assert_array_equal(got, got.astype(np.float16).astype(np.float32))
        expected = reference._run(net, x)
        assert 0 < np.abs(got.reshape(expected.shape) - expected).max() <= 0.05, net


def sim_backend(weights, programs, precision):
    folder = programs["fp16" if precision != "fp32" else "fp32"]["pnet"].parent
    return CoreMLBackend(weights, precision, model_dir=folder, simulate=True, strict_shapes=True)


def test_sim_fp32_cascade_matches_cpp_on_the_dev_inputs(programs, openface_weights):
    require_shared("reference", "cpp_mtcnn_dev.json")
    detector = MTCNN(backend=sim_backend(openface_weights, programs, "fp32"), weights=openface_weights)
    images = [read_image(SAMPLES / e["image"]) for e in dev_entries()]
    for cpp, faces in zip(dev_entries(), detector.detect_batch(images), strict=True):
        assert len(faces) == len(cpp["faces"]), cpp["image"]
        for box, face in zip(faces.boxes, cpp["faces"], strict=True):
            assert np.abs(box - np.asarray(face["bbox"], np.float32)).max() <= PX, cpp["image"]


@pytest.mark.parametrize("precision", ["fp16", "fp16-all"])
def test_sim_fp16_against_fp32_on_the_dev_inputs(programs, openface_weights, precision):
    """The default policy (RNet/ONet FP16) keeps every face with mean IoU >= 0.999; every net in FP16 is only
    reported (the numpy emulation loses a face too, notebook 04)."""
    require_shared("reference", "cpp_mtcnn_dev.json")
    fp32 = MTCNN(backend=sim_backend(openface_weights, programs, "fp32"), weights=openface_weights)
    fp16 = MTCNN(backend=sim_backend(openface_weights, programs, precision), weights=openface_weights)
    rows = []
    for entry in dev_entries():
        image = read_image(SAMPLES / entry["image"])
        rows.append(agreement(entry["image"], fp32.detect(image), fp16.detect(image)))
    summary = summarise_agreement(rows)
    print(f"coreml-sim {precision} vs fp32: {summary}")
    if precision == "fp16":
        assert summary["images_same_count"] == summary["images"] == len(dev_entries())
        assert summary["iou_mean"] >= 0.999
    else:
        assert summary["matched"] >= 0.95 * summary["faces_a"] and summary["iou_median"] >= 0.999


def test_the_backends_are_listed_and_self_checked(bundled_weights):
    for name in ("coreml-sim", "coreml-sim-fp16-all", "coreml-sim-fp32"):
        assert name in select.CHOICES
    backend, diff = select.build_checked("coreml-sim-fp32", bundled_weights)
    assert backend.name == "coreml-sim-fp32" and diff <= select.FP32_TOLERANCE
    backend.close()


def _one_line(err: Exception) -> str:
    message = str(err)
    assert "\n" not in message and "Traceback" not in message
    return message


def test_an_unknown_op_is_a_one_line_error(programs, tmp_path):
    spec = ct.utils.load_spec(str(programs["fp32"]["rnet"]))
    block = spec.mlProgram.functions["main"].block_specializations[spec.mlProgram.functions["main"].opset]
    next(op for op in block.operations if op.type == "prelu").type = "softplus"
    path = tmp_path / "rnet_softplus.mlpackage"
    ct.utils.save_spec(spec, str(path), weights_dir=str(programs["fp32"]["rnet"] / "Data" / "com.apple.CoreML"
                                                     / "weights"))
    with pytest.raises(ConversionError) as info:
        MilProgram(path)
    assert "MIL op 'softplus' is not implemented by the executor" in _one_line(info.value)


def test_a_damaged_package_is_a_one_line_error(programs, tmp_path):
    broken = tmp_path / "onet.mlpackage"
    shutil.copytree(programs["fp32"]["onet"], broken)
    (broken / "Data" / "com.apple.CoreML" / "model.mlmodel").write_bytes(b"not a protobuf")
    with pytest.raises(ConversionError) as info:
        MilProgram(broken)
    assert "not a readable Core ML package" in _one_line(info.value)
    with pytest.raises(ConversionError) as info:
        MilProgram(tmp_path / "missing.mlpackage")
    assert "mtcnn-lab convert --to coreml --overwrite" in _one_line(info.value)
    cut = tmp_path / "rnet.mlpackage"
    shutil.copytree(programs["fp32"]["rnet"], cut)
    blob = cut / "Data" / "com.apple.CoreML" / "weights" / "weight.bin"
    blob.write_bytes(blob.read_bytes()[:200])
    with pytest.raises(ConversionError) as info:
        MilProgram(cut)
    assert "unreadable" in _one_line(info.value)


def test_a_wrong_input_shape_is_a_one_line_error(programs):
    program = MilProgram(programs["fp32"]["rnet"])
    with pytest.raises(ParameterError) as info:
        program.run(np.zeros((2, 3, 48, 48), np.float32))
    assert "rnet.mlpackage takes input shapes Nx3x24x24, not 2x3x48x48" in _one_line(info.value)
    pnet = MilProgram(programs["fp32"]["pnet"])
    with pytest.raises(ParameterError, match=r"pnet.mlpackage takes input shapes .* and \d+ more, not 1x3x13x999"):
        pnet.run(np.zeros((1, 3, 13, 999), np.float32))


@pytest.mark.skipif(not coreml_available()[0], reason=f"needs macOS: {coreml_available()[1]}")
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_the_executor_equals_core_ml_on_macos(programs, bundled_weights, hopper, precision):
    mac = CoreMLBackend(bundled_weights, precision, "CPU_ONLY", programs[precision]["pnet"].parent)
    for net, x in real_inputs(hopper, bundled_weights).items():
        got = MilProgram(programs[precision][net]).run(x)
        expected = mac._predict(net, x)
        assert np.abs(got.reshape(expected.shape) - expected).max() <= (1e-5 if precision == "fp32" else 0.01), net
