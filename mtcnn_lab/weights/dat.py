"""OpenFace's ``.dat`` network files: reading them into a ``NetSpec`` and writing one back, byte for byte.

The format (little-endian; OpenFace's ``FaceDetectorMTCNN.cpp``, ``CNN::Read``): ``int32 num_layers``,
then per layer ``int32 type`` (0 conv, 1 max-pool, 2 fully connected, 3 PReLU, 4 sigmoid) and its payload;
matrices are records ``int32 rows, int32 cols, int32 cv_type (5 = CV_32F)`` followed by ``rows*cols``
float32 values, row-major.
"""

from __future__ import annotations

import errno
import io
import os
import stat
import struct
from pathlib import Path

import numpy as np

from mtcnn_lab.errors import WeightsError
from mtcnn_lab.weights.netspec import FC, Conv, Layer, MaxPool, NetSpec, PReLU, Sigmoid

__all__ = ["read_dat", "write_dat", "check_regular_file", "NotARegularFile"]

CV_32F = 5


class NotARegularFile(OSError):
    """A folder, FIFO, socket or device where a model file should be (``strerror`` says which)."""


def check_regular_file(path: str | Path) -> None:
    """Raise :class:`NotARegularFile` unless ``path`` is a regular file (or a link to one), without opening it:
    opening a FIFO would wait for a writer. ``FileNotFoundError`` and other ``OSError`` of ``stat`` propagate."""
    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        kind = "a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else "a socket or device"
        raise NotARegularFile(errno.EINVAL, f"{kind}, not a regular file", str(path))


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

    def matrix(self, what: str, cols: int | None = None) -> np.ndarray:
        r = self.count(f"{what} rows")
        c = self.count(f"{what} cols")
        cv_type = self.int32(f"{what} type")
        if cv_type != CV_32F:
            raise self.fail(f"{what} has OpenCV type {cv_type}, expected {CV_32F} (CV_32F)")
        if cols is not None and c != cols:
            raise self.fail(f"{what} is {r}x{c}, expected {cols} column(s)")
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
            check_regular_file(source)
            data = Path(source).read_bytes()
        except NotARegularFile as err:
            raise WeightsError(f"{label}: {err.strerror}; give the path of a .dat file") from None
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
