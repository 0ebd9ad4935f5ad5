"""The bundled ``zhang2016`` weights: shapes, bit-identity with OpenFace's ``.dat`` files, provenance.

Part (a) runs everywhere: the bundled npz loads, has MTCNN's layer shapes, and ``write_dat`` of
each net hashes to the SHA-256 of OpenFace's ``.dat`` file, which proves bit-identity without the
files. Part (b) needs OpenFace's files under ``/work/shared`` (skipped otherwise): it compares
them array by array, and demonstrates the input order of RNet/ONet's first FC layer with torch.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from mtcnn_lab.weights.dat import read_dat, write_dat
from mtcnn_lab.weights.netspec import FC, Conv, MaxPool, NetSpec, PReLU, WeightSet
from mtcnn_lab.weights.sets import BUNDLED_FILE, bundled_data, load_weights, save_npz

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "make_bundled_weights.py"
DATA = Path(str(bundled_data()))  # a folder in a source or editable install
NPZ = DATA / BUNDLED_FILE
RECORD = DATA / "zhang2016_mtcnn.json"
LICENSE = DATA / "LICENSE-zhang2016.md"
SHARED = REPO.parent / "shared"
DAT_DIR = (SHARED / "OpenFaceModels" / "2.2.0" / "originals" / "lib" / "local"
           / "LandmarkDetector" / "model" / "mtcnn_detector")
DAT_FILES = {"pnet": "PNet.dat", "rnet": "RNet.dat", "onet": "ONet.dat"}

#: SHA-256 of OpenFace 2.2's model/mtcnn_detector/{PNet,RNet,ONet}.dat.
OPENFACE_DAT_SHA256 = {
    "pnet": "22dfd0a96ec983e99b21c0e214d89d55ea9a471eedd53e5a48203f22bcb4c489",
    "rnet": "95e9c4203ca0a08c84520fa5fd658834213ed2453a7359f4d9514a06762f91e9",
    "onet": "4c853ae5b461abe4d41f1cd77625895cd71452956c63c622fd75a3b820fb1d31",
}

#: (kind, parameter shapes) of every layer, in OpenFace's file order.
EXPECTED_LAYERS = {
    "pnet": [
        ("conv", (10, 3, 3, 3)), ("prelu", (10,)), ("pool", (2, 2, 2, 2)),
        ("conv", (16, 10, 3, 3)), ("prelu", (16,)),
        ("conv", (32, 16, 3, 3)), ("prelu", (32,)),
        ("fc", (6, 32)),
    ],
    "rnet": [
        ("conv", (28, 3, 3, 3)), ("prelu", (28,)), ("pool", (3, 3, 2, 2)),
        ("conv", (48, 28, 3, 3)), ("prelu", (48,)), ("pool", (3, 3, 2, 2)),
        ("conv", (64, 48, 2, 2)), ("prelu", (64,)),
        ("fc", (128, 576)), ("prelu", (128,)),
        ("fc", (6, 128)),
    ],
    "onet": [
        ("conv", (32, 3, 3, 3)), ("prelu", (32,)), ("pool", (3, 3, 2, 2)),
        ("conv", (64, 32, 3, 3)), ("prelu", (64,)), ("pool", (3, 3, 2, 2)),
        ("conv", (64, 64, 3, 3)), ("prelu", (64,)), ("pool", (2, 2, 2, 2)),
        ("conv", (128, 64, 2, 2)), ("prelu", (128,)),
        ("fc", (256, 1152)), ("prelu", (256,)),
        ("fc", (16, 256)),
    ],
}

#: (index of the first FC layer, channels, map side) of the 3x3 feature map it reads.
FC1 = {"rnet": (8, 64, 3), "onet": (11, 128, 3)}


@pytest.fixture(scope="module")
def bundled() -> WeightSet:
    return load_weights("zhang2016")


@pytest.fixture(scope="module")
def record() -> dict:
    return json.loads(RECORD.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def script():
    """``scripts/make_bundled_weights.py`` as a module (importing it needs no torch)."""
    spec = importlib.util.spec_from_file_location("make_bundled_weights", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def shared_dat(net: str) -> Path:
    path = DAT_DIR / DAT_FILES[net]
    if not path.is_file():
        pytest.skip(f"OpenFace's {DAT_FILES[net]} not found under {DAT_DIR} (no /work/shared)")
    return path


# --------------------------------------------------------------------------------------------
# (a) always


def test_bundled_set_loads(bundled):
    assert bundled.name == "zhang2016"
    assert Path(bundled.source) == NPZ
    assert [spec.name for spec in bundled.nets().values()] == ["pnet", "rnet", "onet"]


@pytest.mark.parametrize("net", ["pnet", "rnet", "onet"])
def test_layer_shapes(bundled, net):
    spec = bundled.nets()[net]
    got = []
    for layer in spec.layers:
        if isinstance(layer, Conv | FC):
            assert layer.bias.shape == layer.weight.shape[:1]
            assert layer.weight.dtype == layer.bias.dtype == np.float32
            got.append((layer.kind, layer.weight.shape))
        elif isinstance(layer, PReLU):
            assert layer.slopes.dtype == np.float32
            got.append((layer.kind, layer.slopes.shape))
        else:
            assert isinstance(layer, MaxPool)
            got.append((layer.kind, (layer.kernel_x, layer.kernel_y,
                                     layer.stride_x, layer.stride_y)))
    assert got == EXPECTED_LAYERS[net]


def test_record_pins_openface_hashes(record):
    assert {net: entry["sha256"] for net, entry in record["openface_dat_sha256"].items()} \
        == OPENFACE_DAT_SHA256
    assert {net: entry["file"] for net, entry in record["openface_dat_sha256"].items()} \
        == DAT_FILES
    assert record["source"]["package"] == "facenet-pytorch"
    assert record["source"]["version"] == "2.6.0"
    assert record["source"]["license"] == "MIT"


def test_record_matches_bundled_npz(record):
    assert record["npz"]["file"] == BUNDLED_FILE
    assert hashlib.sha256(NPZ.read_bytes()).hexdigest() == record["npz"]["sha256"]


@pytest.mark.parametrize("net", ["pnet", "rnet", "onet"])
def test_write_dat_is_openface_file(bundled, record, net):
    """The bundled net serialises to exactly the bytes of OpenFace's ``.dat`` file."""
    digest = hashlib.sha256(write_dat(bundled.nets()[net])).hexdigest()
    assert digest == record["openface_dat_sha256"][net]["sha256"] == OPENFACE_DAT_SHA256[net]


@pytest.mark.parametrize("net", ["pnet", "rnet", "onet"])
def test_dat_round_trip(bundled, net):
    spec = bundled.nets()[net]
    again = read_dat(write_dat(spec), net)
    assert again.equals(spec) and spec.equals(again)


def test_license_notice():
    text = LICENSE.read_text(encoding="utf-8")
    assert "MIT License" in text
    assert "Copyright (c) 2016 Kaipeng Zhang" in text
    assert "Copyright (c) 2019 Timothy Esler" in text
    assert "Permission is hereby granted, free of charge" in text


def test_script_refuses_non_identical_weights(bundled, script):
    """One flipped bit anywhere makes the generator stop instead of writing files."""
    nets = dict(bundled.nets())
    assert script.check_against_openface(nets) == OPENFACE_DAT_SHA256
    onet = nets["onet"]
    weight = onet.layers[-1].weight.copy()
    weight.view(np.uint32)[3, 7] ^= 1
    layers = (*onet.layers[:-1], FC(weight, onet.layers[-1].bias))
    nets["onet"] = NetSpec("onet", layers)
    with pytest.raises(script.BuildError, match="NOT bit-identical"):
        script.check_against_openface(nets)


def test_script_npz_is_byte_stable(bundled, script, tmp_path):
    """save_npz + the script's canonical rewrite: same weights, same bytes, loads back equal."""
    blobs = []
    for name in ("a.npz", "b.npz"):
        save_npz(bundled, tmp_path / name)
        blobs.append(script.canonical_npz(tmp_path / name))
    assert blobs[0] == blobs[1]
    (tmp_path / "c.npz").write_bytes(blobs[0])
    with np.load(tmp_path / "c.npz") as data:
        assert str(data["name"]) == "zhang2016"
        assert all(data[f"onet/{key}"].tobytes() == value.tobytes()
                   for key, value in bundled.onet.arrays().items())


def test_fc1_reorder_formula(script):
    """facenet-pytorch column (x*H + y)*C + c lands on OpenFace column (c*W + x)*H + y."""
    channels, side = 5, 3
    n_in = channels * side * side
    facenet = np.arange(n_in, dtype=np.float32)[None, :]
    openface = script.fc1_from_facenet(facenet, channels, side, side)[0]
    for c in range(channels):
        for x in range(side):
            for y in range(side):
                assert openface[(c * side + x) * side + y] == (x * side + y) * channels + c


# --------------------------------------------------------------------------------------------
# (b) with OpenFace's files


@pytest.mark.parametrize("net", ["pnet", "rnet", "onet"])
def test_shared_dat_equals_bundled(bundled, net):
    path = shared_dat(net)
    from_dat = read_dat(path, net)
    assert from_dat.equals(bundled.nets()[net])
    assert hashlib.sha256(path.read_bytes()).hexdigest() == OPENFACE_DAT_SHA256[net]


@pytest.mark.parametrize("net", ["rnet", "onet"])
def test_fc1_input_order(script, net):
    """OpenFace feeds FC1 each map transposed (c, x, y); torch's flatten is (c, y, x).

    The same weights give a different result on torch's flatten, the same result once their
    columns are reindexed; facenet-pytorch's own order (x, y, c) maps back bit for bit.
    """
    torch = pytest.importorskip("torch")
    index, channels, side = FC1[net]
    weight = read_dat(shared_dat(net), net).layers[index].weight  # OpenFace order (n, C*W*H)
    w_of = torch.from_numpy(weight.astype(np.float64))
    fmap = torch.randn(1, channels, side, side, dtype=torch.float64,
                       generator=torch.Generator().manual_seed(0))

    openface_in = fmap.transpose(2, 3).flatten(1)  # (c, x, y)
    torch_in = fmap.flatten(1)  # NCHW: (c, y, x)
    expected = openface_in @ w_of.T
    assert not torch.equal(torch_in, openface_in)
    assert not torch.allclose(torch.nn.functional.linear(torch_in, w_of), expected)

    # OpenFace column j reads NCHW element perm[j]; put each weight column there.
    perm = torch.arange(channels * side * side).reshape(channels, side, side).transpose(1, 2)
    perm = perm.flatten()
    assert torch.equal(torch_in[:, perm], openface_in)
    w_torch = torch.empty_like(w_of)
    w_torch[:, perm] = w_of
    assert torch.allclose(torch.nn.functional.linear(torch_in, w_torch), expected,
                          rtol=1e-12, atol=1e-12)

    # facenet-pytorch: x.permute(0, 3, 2, 1).flatten(); its column k reads NCHW element fidx[k].
    fidx = torch.arange(channels * side * side).reshape(1, channels, side, side)
    fidx = fidx.permute(0, 3, 2, 1).flatten()
    w_facenet = w_torch[:, fidx]
    facenet_in = fmap.permute(0, 3, 2, 1).flatten(1)
    assert torch.allclose(torch.nn.functional.linear(facenet_in, w_facenet), expected,
                          rtol=1e-12, atol=1e-12)
    back = script.fc1_from_facenet(w_facenet.numpy().astype(np.float32), channels, side, side)
    assert back.tobytes() == weight.tobytes()
