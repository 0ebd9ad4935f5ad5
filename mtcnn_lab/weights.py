"""Network weights: the ``NetSpec`` dataclasses, OpenFace's ``.dat`` format, and weight sets.

A :class:`NetSpec` is the single in-memory description of PNet, RNet or ONet that every other part
of the package consumes (reference CNN, torch modules, converters). Arrays keep OpenFace's layout:

* ``Conv.weight`` is (n_out, n_in, kh, kw) float32, a cross-correlation kernel with rows = dy and
  columns = dx; input map 0 of the first layer is **R** (OpenFace feeds R, G, B).
* ``FC.weight`` is (n_out, n_in) float32 so that ``y = W @ x + b``; for the first FC layer of RNet
  and ONet, ``x`` is each feature map flattened **transposed** (channel, then x, then y).

The ``.dat`` format (little-endian, see ``openface_mtcnn_spec.md`` §2): ``int32 num_layers``, then
per layer ``int32 type`` (0 conv, 1 max-pool, 2 fully connected, 3 PReLU, 4 sigmoid) and its
payload; matrices are records ``int32 rows, int32 cols, int32 cv_type (5 = CV_32F)`` followed by
``rows*cols`` float32 values, row-major.
"""

from __future__ import annotations

import hashlib
import io
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import WeightsError

CV_32F = 5
LAYER_TYPES = {0: "conv", 1: "pool", 2: "fc", 3: "prelu", 4: "sigmoid"}
NET_NAMES = ("pnet", "rnet", "onet")


@dataclass(frozen=True, eq=False)
class Conv:
    """Valid, stride-1 cross-correlation; weight (n_out, n_in, kh, kw), bias (n_out,), float32."""

    weight: np.ndarray
    bias: np.ndarray
    kind: str = field(default="conv", init=False)


@dataclass(frozen=True, eq=False)
class PReLU:
    """``x if x >= 0 else slope * x``; one slope per channel (maps) or per neuron (vectors)."""

    slopes: np.ndarray
    kind: str = field(default="prelu", init=False)


@dataclass(frozen=True)
class MaxPool:
    """Max-pool without padding; OpenFace's output size ``round((in - k) / s) + 1``, clipped edges."""

    kernel_x: int
    kernel_y: int
    stride_x: int
    stride_y: int
    kind: str = field(default="pool", init=False)


@dataclass(frozen=True, eq=False)
class FC:
    """Fully connected ``y = weight @ x + bias``; weight (n_out, n_in), bias (n_out,), float32."""

    weight: np.ndarray
    bias: np.ndarray
    kind: str = field(default="fc", init=False)


@dataclass(frozen=True)
class Sigmoid:
    """Element-wise logistic function (a valid OpenFace layer type, unused by the MTCNN files)."""

    kind: str = field(default="sigmoid", init=False)


Layer = Conv | PReLU | MaxPool | FC | Sigmoid


@dataclass(frozen=True, eq=False)
class NetSpec:
    """One network: its name (``pnet``, ``rnet``, ``onet``) and its layers in file order."""

    name: str
    layers: tuple[Layer, ...]

    def layer_keys(self) -> list[str]:
        """Names ``lNN_<kind>`` as used by the C++ layer dumps (NN = 0-based index in the file)."""
        return [f"l{i:02d}_{layer.kind}" for i, layer in enumerate(self.layers)]

    def summary(self) -> list[dict]:
        """One row per layer: key, kind, parameter shape(s), parameter count, value range."""
        rows = []
        for key, layer in zip(self.layer_keys(), self.layers, strict=True):
            arrays = [a for k, a in self.arrays().items() if k.startswith(key + ".") and a.dtype == np.float32]
            values = np.concatenate([a.ravel() for a in arrays]) if arrays else np.zeros(0, np.float32)
            row = {"layer": key, "kind": layer.kind, "shape": [list(a.shape) for a in arrays],
                   "parameters": int(values.size),
                   "min": float(values.min()) if values.size else None,
                   "max": float(values.max()) if values.size else None}
            if isinstance(layer, MaxPool):
                row["shape"] = [[layer.kernel_y, layer.kernel_x], [layer.stride_y, layer.stride_x]]
            rows.append(row)
        return rows

    def arrays(self) -> dict[str, np.ndarray]:
        """Every parameter array, keyed ``lNN_<kind>.<field>`` (for saving and for comparing)."""
        out: dict[str, np.ndarray] = {}
        for key, layer in zip(self.layer_keys(), self.layers, strict=True):
            if isinstance(layer, Conv | FC):
                out[f"{key}.weight"], out[f"{key}.bias"] = layer.weight, layer.bias
            elif isinstance(layer, PReLU):
                out[f"{key}.slopes"] = layer.slopes
            elif isinstance(layer, MaxPool):
                out[f"{key}.pool"] = np.array(
                    [layer.kernel_x, layer.kernel_y, layer.stride_x, layer.stride_y], np.int32
                )
            else:
                out[f"{key}.sigmoid"] = np.zeros(0, np.int32)
        return out

    def equals(self, other: NetSpec) -> bool:
        """True when both nets have the same layers and bit-identical parameters."""
        a, b = self.arrays(), other.arrays()
        return a.keys() == b.keys() and all(
            a[k].dtype == b[k].dtype and a[k].shape == b[k].shape and a[k].tobytes() == b[k].tobytes()
            for k in a
        )


@dataclass(frozen=True, eq=False)
class WeightSet:
    """The three nets of one weight set, its name (``openface`` or ``zhang2016``) and origin."""

    name: str
    pnet: NetSpec
    rnet: NetSpec
    onet: NetSpec
    source: str

    def nets(self) -> dict[str, NetSpec]:
        """``{"pnet": ..., "rnet": ..., "onet": ...}``."""
        return {"pnet": self.pnet, "rnet": self.rnet, "onet": self.onet}


# --------------------------------------------------------------------------------------------
# .dat reading


class _Reader:
    """Sequential little-endian reader that turns every short read into a WeightsError."""

    def __init__(self, data: bytes, label: str):
        self.data, self.pos, self.label = data, 0, label

    def fail(self, what: str) -> WeightsError:
        return WeightsError(
            f"{self.label}: not a valid OpenFace .dat file ({what} at byte {self.pos}); "
            "re-download it with `mtcnn-lab models --accept-license` or use weights='zhang2016'"
        )

    def int32(self, what: str) -> int:
        if self.pos + 4 > len(self.data):
            raise self.fail(f"file ends inside {what}")
        (value,) = struct.unpack_from("<i", self.data, self.pos)
        self.pos += 4
        return value

    def count(self, what: str, low: int = 1, high: int = 1 << 16) -> int:
        value = self.int32(what)
        if not low <= value <= high:
            raise self.fail(f"{what} = {value}, expected {low}..{high}")
        return value

    def floats(self, n: int, what: str) -> np.ndarray:
        end = self.pos + 4 * n
        if end > len(self.data):
            raise self.fail(f"file ends inside {what}")
        values = np.frombuffer(self.data, "<f4", n, self.pos).astype(np.float32)
        self.pos = end
        if not np.isfinite(values).all():
            raise self.fail(f"non-finite value in {what}")
        return values

    def matrix(self, what: str, rows: int | None = None, cols: int | None = None) -> np.ndarray:
        r = self.count(f"{what} rows")
        c = self.count(f"{what} cols")
        cv_type = self.int32(f"{what} type")
        if cv_type != CV_32F:
            raise self.fail(f"{what} has OpenCV type {cv_type}, expected {CV_32F} (CV_32F)")
        if (rows is not None and r != rows) or (cols is not None and c != cols):
            raise self.fail(f"{what} is {r}x{c}, expected {rows}x{cols}")
        return self.floats(r * c, what).reshape(r, c)


def _read_layer(reader: _Reader, index: int) -> Layer:
    layer_type = reader.int32(f"layer {index} type")
    where = f"layer {index}"
    if layer_type == 0:
        n_in = reader.count(f"{where} input maps")
        n_out = reader.count(f"{where} output maps")
        bias = reader.floats(n_out, f"{where} biases")
        kernels = [reader.matrix(f"{where} kernel {k}") for k in range(n_in * n_out)]
        if len({k.shape for k in kernels}) != 1:
            raise reader.fail(f"{where} kernels differ in size")
        kh, kw = kernels[0].shape
        weight = np.stack(kernels).reshape(n_in, n_out, kh, kw).transpose(1, 0, 2, 3)
        return Conv(np.ascontiguousarray(weight), bias)
    if layer_type == 1:
        kx, ky, sx, sy = (reader.count(f"{where} pool {n}") for n in ("kx", "ky", "sx", "sy"))
        return MaxPool(kx, ky, sx, sy)
    if layer_type == 2:
        bias = reader.matrix(f"{where} bias", cols=1)[:, 0]
        weight = reader.matrix(f"{where} weight", cols=len(bias))
        return FC(np.ascontiguousarray(weight.T), np.ascontiguousarray(bias))
    if layer_type == 3:
        return PReLU(np.ascontiguousarray(reader.matrix(f"{where} slopes", cols=1)[:, 0]))
    if layer_type == 4:
        return Sigmoid()
    raise reader.fail(f"{where} has unknown type {layer_type}")


def read_dat(source: str | Path | bytes, name: str) -> NetSpec:
    """Parse an OpenFace ``.dat`` file (path or bytes) into a :class:`NetSpec` named ``name``.

    Every header is checked and the file must be consumed to its last byte; any problem raises
    :class:`~mtcnn_lab.errors.WeightsError` with a one-line message naming the file.
    """
    if isinstance(source, bytes):
        data, label = source, f"<{name} bytes>"
    else:
        label = str(source)
        try:
            data = Path(source).read_bytes()
        except FileNotFoundError:
            raise WeightsError(
                f"{label}: file not found; run `mtcnn-lab models --accept-license` "
                "or use weights='zhang2016'"
            ) from None
        except (OSError, ValueError) as err:
            reason = getattr(err, "strerror", None) or str(err)
            raise WeightsError(f"{label}: cannot read ({reason}); check the path") from None
    reader = _Reader(data, label)
    n_layers = reader.count("layer count", 1, 64)
    layers = tuple(_read_layer(reader, i) for i in range(n_layers))
    if reader.pos != len(data):
        raise reader.fail(f"{len(data) - reader.pos} unexpected trailing bytes")
    return NetSpec(name, layers)


# --------------------------------------------------------------------------------------------
# .dat writing (for round-trip tests and for users who want OpenFace-format files)


def _matrix_bytes(matrix: np.ndarray) -> bytes:
    rows, cols = matrix.shape
    return struct.pack("<iii", rows, cols, CV_32F) + np.ascontiguousarray(matrix, "<f4").tobytes()


def write_dat(spec: NetSpec) -> bytes:
    """Serialise a :class:`NetSpec` to OpenFace's ``.dat`` bytes (inverse of :func:`read_dat`)."""
    out = io.BytesIO()
    out.write(struct.pack("<i", len(spec.layers)))
    for layer in spec.layers:
        if isinstance(layer, Conv):
            n_out, n_in = layer.weight.shape[:2]
            out.write(struct.pack("<iii", 0, n_in, n_out))
            out.write(np.ascontiguousarray(layer.bias, "<f4").tobytes())
            for i in range(n_in):
                for k in range(n_out):
                    out.write(_matrix_bytes(layer.weight[k, i]))
        elif isinstance(layer, MaxPool):
            out.write(struct.pack("<iiiii", 1, layer.kernel_x, layer.kernel_y,
                                  layer.stride_x, layer.stride_y))
        elif isinstance(layer, FC):
            out.write(struct.pack("<i", 2))
            out.write(_matrix_bytes(layer.bias[:, None]))
            out.write(_matrix_bytes(layer.weight.T))
        elif isinstance(layer, PReLU):
            out.write(struct.pack("<i", 3))
            out.write(_matrix_bytes(layer.slopes[:, None]))
        else:
            out.write(struct.pack("<i", 4))
    return out.getvalue()


def rounded_weights(weights: WeightSet, dtype: type = np.float16) -> WeightSet:
    """A copy of a weight set with every float array rounded to ``dtype`` (stored as float32)."""

    def rounded(spec: NetSpec) -> NetSpec:
        layers = []
        for layer in spec.layers:
            if isinstance(layer, Conv | FC):
                layer = type(layer)(layer.weight.astype(dtype).astype(np.float32),
                                    layer.bias.astype(dtype).astype(np.float32))
            elif isinstance(layer, PReLU):
                layer = PReLU(layer.slopes.astype(dtype).astype(np.float32))
            layers.append(layer)
        return NetSpec(spec.name, tuple(layers))

    nets = {name: rounded(spec) for name, spec in weights.nets().items()}
    return WeightSet(f"{weights.name}-{np.dtype(dtype).name}", **nets, source=weights.source)


# --------------------------------------------------------------------------------------------
# the project's own format (npz) and the named weight sets

BUNDLED_DIR = Path(__file__).parent / "data"
BUNDLED_FILE = BUNDLED_DIR / "zhang2016_mtcnn.npz"


def save_npz(weights: WeightSet, path: str | Path) -> None:
    """Write a weight set to one ``.npz``: keys ``<net>/lNN_<kind>.<field>`` plus ``name``."""
    arrays = {f"{net}/{key}": value for net, spec in weights.nets().items()
              for key, value in spec.arrays().items()}
    with open(path, "wb") as handle:  # np.savez on a handle: no ".npz" suffix games
        np.savez_compressed(handle, name=np.array(weights.name), **arrays)


def _layer_from_arrays(kind: str, fields: dict[str, np.ndarray]) -> Layer:
    if kind == "conv":
        return Conv(fields["weight"].astype(np.float32), fields["bias"].astype(np.float32))
    if kind == "fc":
        return FC(fields["weight"].astype(np.float32), fields["bias"].astype(np.float32))
    if kind == "prelu":
        return PReLU(fields["slopes"].astype(np.float32))
    if kind == "pool":
        return MaxPool(*(int(v) for v in fields["pool"]))
    return Sigmoid()


def load_npz(path: str | Path) -> WeightSet:
    """Read a weight set written by :func:`save_npz` (any damage raises :class:`WeightsError`)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            content = {key: data[key] for key in data.files}
        nets = {}
        for net in NET_NAMES:
            layers: dict[str, dict[str, np.ndarray]] = {}
            for key, value in content.items():
                if key.startswith(f"{net}/"):
                    layer_key, field_name = key[len(net) + 1:].split(".")
                    layers.setdefault(layer_key, {})[field_name] = value
            if not layers:
                raise KeyError(f"no {net} layers")
            nets[net] = NetSpec(net, tuple(
                _layer_from_arrays(key.split("_", 1)[1], layers[key]) for key in sorted(layers)))
        return WeightSet(str(content["name"]), **nets, source=str(path))
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile, zlib.error) as err:
        raise WeightsError(f"{path}: not a readable weight archive ({type(err).__name__}: {err}); "
                           "reinstall mtcnn-lab or re-create it with save_npz") from None


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load_openface_weights(root: str | Path | None = None) -> WeightSet:
    """OpenFace's ``{PNet,RNet,ONet}.dat`` from the model cache (checksums verified, no download)."""
    from .models_cache import require_dat_path

    root_path = Path(root) if root is not None else None
    paths = {net: require_dat_path(net, root_path) for net in NET_NAMES}
    nets = {net: read_dat(path, net) for net, path in paths.items()}
    return WeightSet("openface", **nets, source=str(paths["pnet"].parent))


def load_weights(name: str = "auto", models_root: str | Path | None = None) -> WeightSet:
    """Load a weight set by name.

    ``"openface"``: OpenFace's ``.dat`` files from the model cache (error if not installed).
    ``"zhang2016"``: the MIT-licensed MTCNN weights of Zhang et al. 2016 bundled with the package.
    ``"auto"``: OpenFace's files when they are installed, the bundled ones otherwise; the returned
    ``WeightSet.name`` says which was used.
    """
    if name == "openface":
        return load_openface_weights(models_root)
    if name == "zhang2016":
        return load_npz(BUNDLED_FILE)
    if name == "auto":
        from .models_cache import installed_dat_paths

        root_path = Path(models_root) if models_root is not None else None
        if installed_dat_paths(root_path) is not None:
            return load_openface_weights(root_path)
        return load_npz(BUNDLED_FILE)
    raise WeightsError(f"unknown weight set {name!r}; use 'openface', 'zhang2016' or 'auto'")
