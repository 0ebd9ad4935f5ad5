"""The Neural Engine eligibility table, read off programs converted here (expectations from the nets' layers
and the documented rules, worked out by hand)."""

from __future__ import annotations

import pytest

pytest.importorskip("coremltools", reason="coremltools is in the dev extra (pip install -e '.[dev]')")

from mtcnn_lab.convert.coreml import convert_coreml  # noqa: E402
from mtcnn_lab.lab.ane import OFF_MAC, SOURCES, ane_eligibility  # noqa: E402


@pytest.fixture(scope="module")
def table(tmp_path_factory, bundled_weights):
    outdir = tmp_path_factory.mktemp("ane")
    packages = {}
    for precision in ("fp32", "fp16"):
        paths = convert_coreml(bundled_weights, outdir, precision, frame_sizes=[(640, 480)], max_batch=64)
        packages.update({(net, precision): paths[net] for net in ("pnet", "rnet", "onet")})
    return {(r["net"], r["precision"]): r for r in ane_eligibility(packages)}


def test_dtype_decides_the_neural_engine(table):
    for net in ("pnet", "rnet", "onet"):
        fp32 = table[net, "fp32"]
        assert fp32["compute_dtype"] == "float32" and fp32["neural_engine"] == "not eligible"
        assert table[net, "fp16"]["compute_dtype"] == "float16"
    assert "GPU and CPU only" in table["onet", "fp32"]["dtype_rule"]


def test_shapes_by_hand(table):
    # a 640x480 frame has 7 pyramid levels (tests/test_cascade_units.py): 7 enumerated PNet shapes
    pnet = table["pnet", "fp16"]
    assert pnet["input_shapes"] == 7 and pnet["input"] == "1x3x96x128" and pnet["neural_engine"] == "every input shape"
    rnet = table["rnet", "fp16"]
    # the converter's batch range has default 1
    assert rnet["input"] == "Nx3x24x24" and rnet["neural_engine"] == "the default shape 1x3x24x24 only"
    assert "default shape 1x3x24x24" in rnet["shape_rule"]


def test_ops_are_the_nets_layers(table):
    # PNet: 3 conv + the FC as a 1x1 conv, 3 PReLU, 1 pool; RNet: 3 conv, 4 PReLU, 2 pools, 2 linear
    assert table["pnet", "fp32"]["ops"] == "conv x4, max_pool x1, prelu x3"
    assert "conv x3" in table["rnet", "fp32"]["ops"] and "linear x2" in table["rnet", "fp32"]["ops"]
    assert "cast x2" in table["rnet", "fp16"]["ops"] and table["rnet", "fp16"]["bytes"] < table["rnet", "fp32"]["bytes"]


def test_each_rule_names_its_documents(table):
    ranged, enumerated = table["onet", "fp16"]["sources"], table["pnet", "fp16"]["sources"]
    for sources in (ranged, enumerated):
        assert SOURCES["typed_execution"] in sources and SOURCES["compute_plan"] in sources
    assert SOURCES["range_default_only"] in ranged and SOURCES["flexible_shapes"] not in ranged
    assert SOURCES["flexible_shapes"] in enumerated and table["onet", "fp16"]["unknown_off_mac"] == OFF_MAC
