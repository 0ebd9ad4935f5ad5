"""``mtcnn_lab.weights``: the ``.dat`` reader/writer, the npz format and the named weight sets.

1. Round trips: bundled nets through ``write_dat``/``read_dat`` and ``save_npz``/``load_npz``,
   OpenFace's real files byte for byte, and the ``openface``/``zhang2016``/``auto`` weight sets.
2. Random valid nets (every layer type) survive ``write_dat`` -> ``read_dat`` bit-exactly.
3. Reader fuzz: truncations, corrupted headers, trailing bytes, random bytes and non-finite weights
   give a :class:`WeightsError` with a one-line message naming the source, never another
   exception and never a huge allocation. Any byte string the reader accepts is canonical:
   ``write_dat`` of the result gives the same bytes back.
4. Layer semantics of spec section 2, checked on hand-built bytes (not via ``write_dat``).

Everything runs without ``../shared``, using ``write_dat`` of the bundled ``zhang2016`` nets (which
is bit-identical to OpenFace's files) as the source of valid bytes; the tests that read the real
files skip when ``../shared`` is absent.
"""

from __future__ import annotations

import functools
import math
import re
import struct
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from mtcnn_lab.errors import WeightsError
from mtcnn_lab.weights.dat import read_dat, write_dat
from mtcnn_lab.weights.netspec import FC, Conv, MaxPool, NetSpec, PReLU, Sigmoid, WeightSet
from mtcnn_lab.weights.sets import load_npz, load_weights, save_npz

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
MODELS_ROOT = SHARED / "OpenFaceModels"
DAT_DIR = (MODELS_ROOT / "2.2.0" / "originals" / "lib" / "local" / "LandmarkDetector" / "model"
           / "mtcnn_detector")
DAT_FILES = {"pnet": "PNet.dat", "rnet": "RNet.dat", "onet": "ONet.dat"}
NETS = tuple(DAT_FILES)

needs_shared = pytest.mark.skipif(
    not all((DAT_DIR / name).is_file() for name in DAT_FILES.values()),
    reason=f"OpenFace's PNet/RNet/ONet.dat not found under {DAT_DIR} "
           "(the shared/ folder beside the checkout is absent)",
)

#: No single parse of a corrupted file may allocate more than this (the reader caps its counts).
MEMORY_CAP = 64 << 20

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --------------------------------------------------------------------------------------------
# helpers


@functools.cache
def bundled() -> WeightSet:
    return load_weights("zhang2016")


@functools.cache
def valid_bytes(net: str) -> bytes:
    """OpenFace's ``.dat`` bytes of ``net`` (bit-identical to the real file), made from the bundle."""
    return write_dat(bundled().nets()[net])


def i32(*values: int) -> bytes:
    return struct.pack(f"<{len(values)}i", *values)


def f32(values) -> bytes:
    return np.asarray(values, dtype="<f4").tobytes()


def record(matrix, cv_type: int = 5) -> bytes:
    """An OpenCV matrix record written by hand: rows, cols, type, then the values row-major."""
    matrix = np.asarray(matrix, dtype=np.float32)
    return i32(matrix.shape[0], matrix.shape[1], cv_type) + f32(matrix.ravel())


class Layout:
    """Walks a ``.dat`` file with spec section 2's grammar, independently of ``read_dat``.

    ``ints`` lists every int32 header field as (offset, name); ``runs`` every float32 run as
    (offset, count, name).
    """

    def __init__(self, data: bytes):
        self.data, self.pos = data, 0
        self.ints: list[tuple[int, str]] = []
        self.runs: list[tuple[int, int, str]] = []
        layers = self._int("layers")
        for index in range(layers):
            where = f"l{index}"
            kind = self._int(f"{where}.type")
            if kind == 0:
                n_in, n_out = self._int(f"{where}.n_in"), self._int(f"{where}.n_out")
                self._floats(n_out, f"{where}.bias")
                for k in range(n_in * n_out):
                    self._record(f"{where}.kernel{k}")
            elif kind == 1:
                for name in ("kx", "ky", "sx", "sy"):
                    self._int(f"{where}.{name}")
            elif kind == 2:
                self._record(f"{where}.fc_bias")
                self._record(f"{where}.fc_weight")
            elif kind == 3:
                self._record(f"{where}.slopes")
            else:
                assert kind == 4, kind
        assert self.pos == len(data)

    def _int(self, name: str) -> int:
        self.ints.append((self.pos, name))
        (value,) = struct.unpack_from("<i", self.data, self.pos)
        self.pos += 4
        return value

    def _floats(self, count: int, name: str) -> None:
        self.runs.append((self.pos, count, name))
        self.pos += 4 * count

    def _record(self, name: str) -> None:
        rows, cols = self._int(f"{name}.rows"), self._int(f"{name}.cols")
        self._int(f"{name}.cv_type")
        self._floats(rows * cols, name)

    def structural_ints(self) -> list[tuple[int, str]]:
        """The header fields except those of kernels other than each conv layer's first and last."""
        kernels: dict[str, list[str]] = {}
        for _, name in self.ints:
            layer, _, rest = name.partition(".")
            if rest.startswith("kernel") and rest.endswith(".rows"):
                kernels.setdefault(layer, []).append(rest.split(".")[0])
        keep = {f"{layer}.{k}" for layer, names in kernels.items() for k in (names[0], names[-1])}
        return [(offset, name) for offset, name in self.ints
                if ".kernel" not in name or name.rsplit(".", 1)[0] in keep]


@functools.cache
def pnet_layout() -> Layout:
    return Layout(valid_bytes("pnet"))


@functools.cache
def pnet_structural_ints() -> tuple[tuple[int, str], ...]:
    return tuple(pnet_layout().structural_ints())


def parse(data: bytes, name: str = "pnet") -> NetSpec | WeightsError:
    """``read_dat`` of ``data``: the net, or the WeightsError (checked to be one line, labelled).

    Any other exception propagates and fails the test. An accepted file must be canonical.
    """
    try:
        spec = read_dat(data, name)
    except WeightsError as err:
        check_message(err, f"<{name} bytes>")
        return err
    assert write_dat(spec) == data, "read_dat accepted bytes that write_dat does not reproduce"
    return spec


def check_message(err: WeightsError, label: str) -> str:
    message = str(err)
    assert "\n" not in message and "\r" not in message, message
    assert label in message, message
    return message


def must_fail(data: bytes, name: str = "pnet") -> str:
    result = parse(data, name)
    assert isinstance(result, WeightsError), f"read_dat accepted {len(data)} corrupt bytes"
    return str(result)


def put_i32(data: bytes, offset: int, value: int) -> bytes:
    out = bytearray(data)
    struct.pack_into("<i", out, offset, value)
    return bytes(out)


def parse_traced(data: bytes, name: str = "pnet") -> tuple[NetSpec | WeightsError, int]:
    """:func:`parse` and the peak traced allocation (numpy's included) while it ran."""
    tracemalloc.start()
    try:
        result = parse(data, name)
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def layer_summary(spec: NetSpec) -> list[tuple]:
    out = []
    for layer in spec.layers:
        if isinstance(layer, Conv | FC):
            out.append((layer.kind, layer.weight.shape))
        elif isinstance(layer, PReLU):
            out.append((layer.kind, layer.slopes.shape))
        elif isinstance(layer, MaxPool):
            out.append((layer.kind, (layer.kernel_x, layer.kernel_y, layer.stride_x, layer.stride_y)))
        else:
            out.append((layer.kind,))
    return out


# --------------------------------------------------------------------------------------------
# 1. round trips and weight sets


@pytest.mark.parametrize("net", NETS)
def test_bundled_dat_round_trip_is_byte_exact(net):
    spec = bundled().nets()[net]
    data = write_dat(spec)
    back = read_dat(data, net)
    assert back.name == net
    assert back.equals(spec) and spec.equals(back)
    assert write_dat(back) == data
    for value in back.arrays().values():
        assert value.flags.c_contiguous
        assert value.dtype in (np.float32, np.int32)
        assert value.dtype.isnative


@needs_shared
@pytest.mark.parametrize("net", NETS)
def test_real_files_round_trip_byte_for_byte(net):
    path = DAT_DIR / DAT_FILES[net]
    data = path.read_bytes()
    from_path, from_str, from_bytes = read_dat(path, net), read_dat(str(path), net), read_dat(data, net)
    assert from_path.equals(from_bytes) and from_str.equals(from_bytes)
    assert write_dat(from_path) == data
    assert from_path.equals(bundled().nets()[net])


def test_npz_round_trip(tmp_path):
    weights = bundled()
    path = tmp_path / "weights.bin"  # no .npz suffix: save_npz must write exactly this path
    save_npz(weights, path)
    assert path.is_file() and not (tmp_path / "weights.bin.npz").exists()
    back = load_npz(path)
    assert back.name == "zhang2016"
    assert back.source == str(path)
    for net in NETS:
        assert back.nets()[net].name == net
        assert back.nets()[net].equals(weights.nets()[net])


@needs_shared
def test_openface_set_equals_bundled_net_by_net():
    openface = load_weights("openface", models_root=MODELS_ROOT)
    assert openface.name == "openface"
    assert Path(openface.source) == DAT_DIR
    for net in NETS:
        assert openface.nets()[net].name == net
        assert openface.nets()[net].equals(bundled().nets()[net]), net


@needs_shared
def test_auto_picks_openface_when_cached(monkeypatch):
    assert load_weights("auto", models_root=MODELS_ROOT).name == "openface"
    monkeypatch.setenv("OPENFACE_MODELS_DIR", str(MODELS_ROOT))
    assert load_weights("auto").name == "openface"
    assert load_weights().name == "openface"


def test_auto_falls_back_to_bundled(tmp_path, monkeypatch, caplog):
    with caplog.at_level("WARNING", logger="mtcnn_lab.weights.sets"):
        chosen = load_weights("auto", models_root=tmp_path)
    assert chosen.name == "zhang2016"
    assert "using the bundled zhang2016 weights" in caplog.text and "PNet.dat missing" in caplog.text
    assert all(chosen.nets()[net].equals(bundled().nets()[net]) for net in NETS)
    monkeypatch.setenv("OPENFACE_MODELS_DIR", str(tmp_path / "nothing-here"))
    caplog.clear()
    assert load_weights("auto").name == "zhang2016"
    assert caplog.text == ""  # nothing installed and nothing asked for: nothing to say
    with pytest.raises(WeightsError, match="models_root must be the path of a model folder, not int"):
        load_weights("auto", models_root=3)


def test_auto_falls_back_when_cache_is_incomplete(tmp_path, caplog):
    """A cache with a corrupt file is not 'installed': auto uses the bundle saying why, openface refuses."""
    folder = tmp_path / "2.2.0" / "originals" / DAT_DIR.relative_to(MODELS_ROOT / "2.2.0" / "originals")
    folder.mkdir(parents=True)
    for net, name in DAT_FILES.items():
        (folder / name).write_bytes(valid_bytes(net))
    (folder / "ONet.dat").write_bytes(valid_bytes("onet")[:-4] + b"\0\0\0\0")
    with caplog.at_level("WARNING", logger="mtcnn_lab.weights.sets"):
        assert load_weights("auto", models_root=tmp_path).name == "zhang2016"
    assert "ONet.dat" in caplog.text
    with pytest.raises(WeightsError) as info:
        load_weights("openface", models_root=tmp_path)
    check_message(info.value, str(folder / "ONet.dat"))


@pytest.mark.parametrize("name", ["", "nope", "zhang", "open face", "pnet"])
def test_unknown_weight_set_name(name):
    with pytest.raises(WeightsError) as info:
        load_weights(name)
    message = check_message(info.value, repr(name))
    assert "zhang2016" in message and "openface" in message


def test_openface_without_cache_says_how_to_install(tmp_path):
    with pytest.raises(WeightsError) as info:
        load_weights("openface", models_root=tmp_path)
    message = check_message(info.value, str(tmp_path))
    assert "mtcnn-lab models" in message


# --------------------------------------------------------------------------------------------
# 2. synthetic nets

FLOATS = st.floats(width=32, allow_nan=False, allow_infinity=False)
DIM = st.integers(1, 4)


def float_arrays(*shape: int):
    return hnp.arrays(np.float32, shape, elements=FLOATS)


@st.composite
def layers(draw):
    kind = draw(st.sampled_from(["conv", "pool", "fc", "prelu", "sigmoid"]))
    if kind == "conv":
        n_out, n_in, kh, kw = draw(DIM), draw(DIM), draw(DIM), draw(DIM)
        return Conv(draw(float_arrays(n_out, n_in, kh, kw)), draw(float_arrays(n_out)))
    if kind == "fc":
        n_out, n_in = draw(st.integers(1, 9)), draw(st.integers(1, 9))
        return FC(draw(float_arrays(n_out, n_in)), draw(float_arrays(n_out)))
    if kind == "prelu":
        return PReLU(draw(float_arrays(draw(st.integers(1, 9)))))
    if kind == "pool":
        side = st.one_of(st.integers(1, 5), st.sampled_from([1 << 16]))
        return MaxPool(draw(side), draw(side), draw(side), draw(side))
    return Sigmoid()


def net_specs(name: str = "synthetic", max_layers: int = 8):
    return st.lists(layers(), min_size=1, max_size=max_layers).map(lambda ls: NetSpec(name, tuple(ls)))


@given(net_specs())
@settings(max_examples=200, deadline=None)
def test_synthetic_net_dat_round_trip(spec):
    data = write_dat(spec)
    back = read_dat(data, "synthetic")
    assert back.equals(spec) and spec.equals(back)
    assert layer_summary(back) == layer_summary(spec)
    assert write_dat(back) == data
    assert Layout(data).pos == len(data)  # and the bytes follow spec section 2's grammar


@given(net_specs("pnet", 4), net_specs("rnet", 4), net_specs("onet", 4), st.sampled_from(["a", "openface"]))
@settings(max_examples=25, deadline=None)
def test_synthetic_weight_set_npz_round_trip(tmp_path_factory, pnet, rnet, onet, name):
    path = tmp_path_factory.mktemp("npz") / "w.npz"
    save_npz(WeightSet(name, pnet, rnet, onet, source="test"), path)
    back = load_npz(path)
    assert back.name == name
    for net, spec in zip(NETS, (pnet, rnet, onet), strict=True):
        assert back.nets()[net].equals(spec), net
        assert layer_summary(back.nets()[net]) == layer_summary(spec)


def test_layer_count_limits():
    one = i32(4)  # a sigmoid layer: a type and no payload
    assert len(read_dat(i32(64) + one * 64, "x").layers) == 64
    spec = NetSpec("x", tuple(MaxPool(1 + i % 3, 2, 1, 1 + i % 2) for i in range(64)))
    assert read_dat(write_dat(spec), "x").equals(spec)
    for count in (65, 0, -1, (1 << 31) - 1, -(1 << 31)):
        message = must_fail(i32(count) + one * 65, "x")
        assert "layer count" in message


# --------------------------------------------------------------------------------------------
# 3. reader fuzz


def test_every_structural_truncation_of_pnet_fails():
    """Cuts at, and inside, every header field (and each float run's ends) of PNet."""
    data, layout = valid_bytes("pnet"), pnet_layout()
    cuts = set(range(0, 64))
    structural = {name.rsplit(".", 1)[0] for _, name in pnet_structural_ints()}
    for offset, _ in pnet_structural_ints():
        cuts.update((offset, offset + 2))
    for offset, count, name in layout.runs:
        if name in structural:
            cuts.update((offset + 1, offset + 4 * count - 1))
    cuts.add(len(data) - 1)
    for cut in sorted(c for c in cuts if c < len(data)):
        message = must_fail(data[:cut])
        assert "ends inside" in message, (cut, message)


@given(st.data())
@FUZZ
def test_random_truncation_fails(data):
    full = valid_bytes(data.draw(st.sampled_from(["pnet"] * 7 + ["rnet"])))
    cut = data.draw(st.integers(0, len(full) - 1))
    message = must_fail(full[:cut])
    assert f"at byte {cut}" in message or "ends inside" in message


INTERESTING_INTS = [0, 1, -1, 2, 3, 4, 5, 6, 7, 32, 64, 65, 255, 256, 65535, 65536, 65537,
                    1 << 20, (1 << 31) - 1, -(1 << 31), 0x7F800000, 0x3F800000]
INT32 = st.one_of(st.sampled_from(INTERESTING_INTS), st.integers(-(1 << 31), (1 << 31) - 1))


@given(st.data())
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_header_int32_overwrite_parses_or_fails_cleanly(data):
    fields = st.one_of(st.sampled_from(pnet_structural_ints()), st.sampled_from(pnet_layout().ints))
    offset, _name = data.draw(fields)
    value = data.draw(INT32)
    mutated = put_i32(valid_bytes("pnet"), offset, value)
    _, peak = parse_traced(mutated)
    assert peak < MEMORY_CAP


@pytest.mark.parametrize("net", ["pnet", "rnet"])
def test_huge_counts_in_every_layer_header_fail_without_big_allocations(net):
    """Maximal counts in each layer's own header fields (not the kernels'): error, small memory."""
    data = valid_bytes(net)
    layout = Layout(data)
    fields = [(o, n) for o, n in layout.ints if ".kernel" not in n]
    if net == "rnet":  # the slow net: its first conv layer and its big FC weight record
        fields = [(o, n) for o, n in fields if n.startswith(("layers", "l0.", "l8.fc_weight"))]
    for offset, name in fields:
        for value in (65536, (1 << 31) - 1):
            result, peak = parse_traced(put_i32(data, offset, value), net)
            assert peak < MEMORY_CAP, (name, value, peak)
            if name.split(".")[-1] in ("kx", "ky", "sx", "sy") and value == 65536:
                assert isinstance(result, NetSpec)  # pool sizes up to 2**16 are legal
            else:
                assert isinstance(result, WeightsError), (name, value)


@given(st.data())
@FUZZ
def test_random_byte_flips_parse_or_fail_cleanly(data):
    full = valid_bytes("pnet")
    header_bytes = st.sampled_from(pnet_structural_ints()).flatmap(
        lambda field: st.integers(field[0], field[0] + 3))
    position = data.draw(st.one_of(header_bytes, st.integers(0, len(full) - 1)))
    mask = data.draw(st.integers(1, 255))
    mutated = bytearray(full)
    mutated[position] ^= mask
    parse(bytes(mutated))


@given(st.binary(min_size=1, max_size=64))
@settings(max_examples=100, deadline=None)
def test_trailing_garbage_fails(tail):
    message = must_fail(valid_bytes("pnet") + tail)
    assert f"{len(tail)} unexpected trailing bytes" in message


@pytest.mark.parametrize("net", NETS)
@pytest.mark.parametrize("tail", [b"\0", i32(4), i32(0) * 3], ids=["byte", "sigmoid", "zeros"])
def test_trailing_bytes_after_each_net_fail(net, tail):
    """Even a complete extra (sigmoid) layer is rejected: the layer count says where to stop."""
    must_fail(valid_bytes(net) + tail, net)


@given(st.binary(max_size=512))
@FUZZ
def test_random_bytes_parse_or_fail_cleanly(blob):
    parse(blob)


SMALL_INT_BYTES = st.integers(-2, 8).map(i32)
TOKENS = st.one_of(SMALL_INT_BYTES, SMALL_INT_BYTES, st.sampled_from([i32(5)]),
                   FLOATS.map(lambda x: f32([x])), st.binary(min_size=1, max_size=4))


@given(st.integers(1, 4), st.lists(TOKENS, max_size=80))
@FUZZ
def test_random_token_streams_parse_or_fail_cleanly(layers_count, tokens):
    """Streams of small ints and floats reach deep into the grammar more often than random bytes."""
    parse(i32(layers_count) + b"".join(tokens))


def test_random_bytes_can_be_valid():
    """The smallest valid file: one sigmoid layer (so random bytes are not *always* invalid)."""
    spec = parse(i32(1, 4))
    assert isinstance(spec, NetSpec) and layer_summary(spec) == [("sigmoid",)]


NON_FINITE = {
    "nan": float("nan"), "-nan": -float("nan"), "inf": math.inf, "-inf": -math.inf,
    "snan": struct.unpack("<f", struct.pack("<I", 0x7F800001))[0],
    "nan-payload": struct.unpack("<f", struct.pack("<I", 0xFFC12345))[0],
}


def put_f32_bits(data: bytes, offset: int, value: float) -> bytes:
    out = bytearray(data)
    out[offset:offset + 4] = f32([value])
    return bytes(out)


@pytest.mark.parametrize("value", NON_FINITE.values(), ids=NON_FINITE.keys())
def test_non_finite_weight_in_every_kind_of_run_fails(value):
    data, runs = valid_bytes("pnet"), pnet_layout().runs
    kinds = {}
    for offset, count, name in runs:  # first and last value of the first run of each kind
        kind = name.split(".")[1].rstrip("0123456789")
        kinds.setdefault(kind, (offset, count))
    assert set(kinds) == {"bias", "kernel", "slopes", "fc_bias", "fc_weight"}
    for offset, count in kinds.values():
        for position in (offset, offset + 4 * (count - 1)):
            assert "non-finite" in must_fail(put_f32_bits(data, position, value))


@given(st.data())
@settings(max_examples=100, deadline=None)
def test_non_finite_anywhere_fails(data):
    full, runs = valid_bytes("pnet"), pnet_layout().runs
    offset, count, _ = data.draw(st.sampled_from(runs))
    index = data.draw(st.integers(0, count - 1))
    value = data.draw(st.sampled_from(list(NON_FINITE.values())))
    assert "non-finite" in must_fail(put_f32_bits(full, offset + 4 * index, value))


def test_path_errors_name_the_path(tmp_path):
    missing = tmp_path / "PNet.dat"
    for source in (missing, str(missing)):
        with pytest.raises(WeightsError) as info:
            read_dat(source, "pnet")
        assert "not found" in check_message(info.value, str(missing))
    with pytest.raises(WeightsError) as info:
        read_dat(tmp_path, "pnet")
    check_message(info.value, str(tmp_path))

    corrupt = tmp_path / "bad.dat"
    corrupt.write_bytes(valid_bytes("pnet")[:1000])
    with pytest.raises(WeightsError) as info:
        read_dat(corrupt, "pnet")
    assert "mtcnn-lab models" in check_message(info.value, str(corrupt))

    good = tmp_path / "good.dat"
    good.write_bytes(valid_bytes("pnet"))
    assert read_dat(good, "pnet").equals(bundled().pnet)
    assert read_dat(str(good), "pnet").equals(bundled().pnet)


def test_path_with_nul_byte_is_a_weights_error():
    with pytest.raises(WeightsError, match="cannot read .embedded null byte.; check the path"):
        read_dat("PNet\0.dat", "pnet")


@pytest.mark.parametrize("damage", ["truncated", "bad-crc", "missing-field"])
def test_damaged_npz_is_a_weights_error(tmp_path, damage):
    path = tmp_path / "w.npz"
    if damage == "missing-field":
        np.savez(path, name=np.array("x"), **{"pnet/l00_conv.weight": np.zeros((1, 1, 1, 1), np.float32)})
    else:
        save_npz(bundled(), path)
        blob = bytearray(path.read_bytes())
        if damage == "truncated":
            blob = blob[: len(blob) // 2]
        else:
            blob[5000] ^= 0xFF
        path.write_bytes(bytes(blob))
    with pytest.raises(WeightsError) as info:
        load_npz(path)
    check_message(info.value, str(path))


# --------------------------------------------------------------------------------------------
# 4. layer semantics (spec section 2)

SPEC_LAYERS = {  # spec section 2, "Layer sequences"; conv weight (out, in, kh, kw), fc (out, in)
    "pnet": [("conv", (10, 3, 3, 3)), ("prelu", (10,)), ("pool", (2, 2, 2, 2)),
             ("conv", (16, 10, 3, 3)), ("prelu", (16,)),
             ("conv", (32, 16, 3, 3)), ("prelu", (32,)),
             ("fc", (6, 32))],
    "rnet": [("conv", (28, 3, 3, 3)), ("prelu", (28,)), ("pool", (3, 3, 2, 2)),
             ("conv", (48, 28, 3, 3)), ("prelu", (48,)), ("pool", (3, 3, 2, 2)),
             ("conv", (64, 48, 2, 2)), ("prelu", (64,)),
             ("fc", (128, 576)), ("prelu", (128,)), ("fc", (6, 128))],
    "onet": [("conv", (32, 3, 3, 3)), ("prelu", (32,)), ("pool", (3, 3, 2, 2)),
             ("conv", (64, 32, 3, 3)), ("prelu", (64,)), ("pool", (3, 3, 2, 2)),
             ("conv", (64, 64, 3, 3)), ("prelu", (64,)), ("pool", (2, 2, 2, 2)),
             ("conv", (128, 64, 2, 2)), ("prelu", (128,)),
             ("fc", (256, 1152)), ("prelu", (256,)), ("fc", (16, 256))],
}
INPUT_SIDE = {"rnet": 24, "onet": 48}


def net_sources(net: str) -> list[NetSpec]:
    sources = [bundled().nets()[net]]
    if (DAT_DIR / DAT_FILES[net]).is_file():
        sources.append(read_dat(DAT_DIR / DAT_FILES[net], net))
    return sources


@pytest.mark.parametrize("net", NETS)
def test_layer_sequences_match_spec(net):
    for spec in net_sources(net):
        assert layer_summary(spec) == SPEC_LAYERS[net]
        assert spec.layer_keys()[0] == "l00_conv"
        for layer in spec.layers:
            if isinstance(layer, Conv | FC):
                assert layer.bias.shape == layer.weight.shape[:1]
                assert layer.weight.dtype == layer.bias.dtype == np.float32


@pytest.mark.parametrize("net", ["rnet", "onet"])
def test_first_fc_input_matches_spatial_size(net):
    """24/48-pixel inputs shrink to 3x3 maps (pool rule round((in - k) / s) + 1, half up)."""
    side, channels = INPUT_SIDE[net], 3
    for layer in bundled().nets()[net].layers:
        if isinstance(layer, Conv):
            assert layer.weight.shape[1] == channels
            channels, side = layer.weight.shape[0], side - layer.weight.shape[2] + 1
        elif isinstance(layer, MaxPool):
            side = math.floor((side - layer.kernel_x) / layer.stride_x + 0.5) + 1
        elif isinstance(layer, FC):
            assert side == 3 and layer.weight.shape[1] == channels * side * side
            break


def test_pool_fields_are_kernel_x_kernel_y_stride_x_stride_y():
    data = i32(1, 1, 2, 3, 4, 5)
    (pool,) = read_dat(data, "x").layers
    assert (pool.kernel_x, pool.kernel_y, pool.stride_x, pool.stride_y) == (2, 3, 4, 5)
    assert write_dat(NetSpec("x", (MaxPool(kernel_x=2, kernel_y=3, stride_x=4, stride_y=5),))) == data


def test_conv_kernels_are_input_map_major_rows_dy():
    n_in, n_out, kh, kw = 2, 3, 2, 3
    kernel = {(i, k): 100 * i + 10 * k + np.arange(kh * kw, dtype=np.float32).reshape(kh, kw)
              for i in range(n_in) for k in range(n_out)}
    data = i32(1, 0, n_in, n_out) + f32([0.5, -1.5, 2.5])
    data += b"".join(record(kernel[i, k]) for i in range(n_in) for k in range(n_out))
    (conv,) = read_dat(data, "x").layers
    assert isinstance(conv, Conv)
    assert conv.weight.shape == (n_out, n_in, kh, kw)
    assert conv.bias.tolist() == [0.5, -1.5, 2.5]
    for (i, k), values in kernel.items():
        np.testing.assert_array_equal(conv.weight[k, i], values)
    assert conv.weight[2, 1, 1, 0] == 100 + 20 + 3  # row = dy, column = dx
    assert write_dat(NetSpec("x", (conv,))) == data


def test_fc_is_bias_then_weight_in_by_out_stored_transposed():
    n_in, n_out = 4, 3
    stored = np.arange(n_in * n_out, dtype=np.float32).reshape(n_in, n_out) - 5  # MATLAB's w
    bias = np.array([1.0, -2.0, 3.0], np.float32)
    data = i32(1, 2) + record(bias[:, None]) + record(stored)
    (fc,) = read_dat(data, "x").layers
    assert isinstance(fc, FC)
    np.testing.assert_array_equal(fc.weight, stored.T)
    np.testing.assert_array_equal(fc.bias, bias)
    x = np.array([1.0, 0.5, -1.0, 2.0], np.float32)
    np.testing.assert_allclose(fc.weight @ x + fc.bias, x @ stored + bias)  # y = x.w + b
    assert write_dat(NetSpec("x", (fc,))) == data


def test_prelu_is_one_column_record():
    slopes = np.array([0.25, -0.5, 0.0], np.float32)
    data = i32(1, 3) + record(slopes[:, None])
    (prelu,) = read_dat(data, "x").layers
    assert isinstance(prelu, PReLU)
    np.testing.assert_array_equal(prelu.slopes, slopes)
    assert write_dat(NetSpec("x", (prelu,))) == data
    must_fail(i32(1, 3) + record(slopes[None, :]), "x")  # 1x3 instead of 3x1


def test_sigmoid_has_no_payload():
    assert [layer.kind for layer in read_dat(i32(3, 4, 1, 2, 2, 1, 1, 4), "x").layers] \
        == ["sigmoid", "pool", "sigmoid"]


@pytest.mark.parametrize("layer_type", [-1, 5, 6, 255, 1 << 30])
def test_unknown_layer_type_fails(layer_type):
    assert f"unknown type {layer_type}" in must_fail(i32(1, layer_type) + i32(0) * 8, "x")


@pytest.mark.parametrize("cv_type", [0, 4, 6, 13, -5])
def test_matrix_type_other_than_cv_32f_fails(cv_type):
    data = i32(1, 3) + record(np.ones((2, 1)), cv_type=cv_type)
    assert "CV_32F" in must_fail(data, "x")


def test_malformed_records_fail():
    bias, weight = np.ones((3, 1)), np.ones((4, 3))
    assert "expected" in must_fail(i32(1, 2) + record(np.ones((3, 2))) + record(weight), "x")
    assert "expected" in must_fail(i32(1, 2) + record(bias) + record(np.ones((4, 2))), "x")
    assert must_fail(i32(1, 2) + record(bias) + record(np.ones((0, 3))), "x")
    kernels = record(np.ones((2, 2))) + record(np.ones((2, 3)))
    assert "differ" in must_fail(i32(1, 0, 1, 2) + f32([0, 0]) + kernels, "x")
    assert must_fail(i32(1, 0, 0, 2) + f32([0, 0]), "x")
    assert must_fail(i32(1, 1, 2, 2, 0, 2), "x")
    assert must_fail(i32(1, 1, 2, -2, 2, 2), "x")


def _record_fields(spec) -> list[tuple[int, str]]:
    """Where each header field of a .dat file starts and what OpenFace's format calls it, walked from the
    format (module docstring of mtcnn_lab.weights.dat) independently of the reader."""
    from mtcnn_lab.weights.netspec import FC, Conv, MaxPool, PReLU

    fields, pos = [(0, "layer count")], 4

    def matrix(name, rows, cols):
        nonlocal pos
        fields.extend([(pos, f"{name} rows"), (pos + 4, f"{name} cols"), (pos + 8, f"{name} type"), (pos + 12, name)])
        pos += 12 + 4 * rows * cols

    for i, layer in enumerate(spec.layers):
        fields.append((pos, f"layer {i} type"))
        pos += 4
        if isinstance(layer, Conv):
            n_out, n_in, kh, kw = layer.weight.shape
            fields += [(pos, f"layer {i} input maps"), (pos + 4, f"layer {i} output maps"),
                       (pos + 8, f"layer {i} biases")]
            pos += 8 + 4 * n_out
            for k in range(n_in * n_out):
                matrix(f"layer {i} kernel {k}", kh, kw)
        elif isinstance(layer, MaxPool):
            for n in ("kx", "ky", "sx", "sy"):
                fields.append((pos, f"layer {i} pool {n}"))
                pos += 4
        elif isinstance(layer, FC):
            matrix(f"layer {i} bias", len(layer.bias), 1)
            matrix(f"layer {i} weight", layer.weight.shape[1], layer.weight.shape[0])
        elif isinstance(layer, PReLU):
            matrix(f"layer {i} slopes", len(layer.slopes), 1)
    return fields


@pytest.mark.parametrize("net", ["pnet", "rnet", "onet"])
def test_a_file_cut_at_any_field_names_that_field_and_its_byte(net):
    data = valid_bytes(net)
    fields = _record_fields(bundled()[net] if isinstance(bundled(), dict) else getattr(bundled(), net))
    assert fields[-1][0] < len(data)
    checked = 0
    for offset, field in fields:
        if " kernel " not in field or re.search(r" kernel [01]( |$)", field):  # the first two kernels of a layer
            with pytest.raises(WeightsError) as info:
                read_dat(data[:offset], net)
            message = str(info.value)
            assert f"(file ends inside {field} at byte {offset}); re-download it with `mtcnn-lab models " \
                   "--accept-license` or use weights='zhang2016'" in message, (offset, message)
            checked += 1
    assert checked >= 10


def test_an_unreadable_path_says_why_in_words(tmp_path):
    with pytest.raises(WeightsError, match=r": a folder, not a regular file; give the path of a \.dat file$"):
        read_dat(tmp_path, "pnet")


def test_a_layer_count_out_of_range_names_it():
    import struct

    with pytest.raises(WeightsError, match=r"layer count = 0, expected 1\.\.64 at byte 4"):
        read_dat(struct.pack("<i", 0), "pnet")


def test_an_fc_bias_with_two_columns_is_refused():
    import struct

    data = struct.pack("<iiii", 1, 2, 2, 2) + struct.pack("<i", 5) + bytes(16)  # 1 layer: FC, bias 2x2
    with pytest.raises(WeightsError, match="layer 0 bias is 2x2, expected 1 column"):
        read_dat(data, "pnet")


def test_a_missing_file_names_the_fix(tmp_path):
    with pytest.raises(WeightsError) as info:
        read_dat(tmp_path / "PNet.dat", "pnet")
    assert str(info.value) == (f"{tmp_path / 'PNet.dat'}: file not found; run `mtcnn-lab models --accept-license` "
                               "or use weights='zhang2016'")
