"""Executing a saved Core ML ML Program (``.mlpackage``) with numpy, op by op, on any OS.

Core ML predicts only on macOS. To check the very files a Mac user loads, :class:`MilProgram` reads the
package's ML Program (its protobuf spec through ``coremltools.utils.load_spec``, its weight blobs through
coremltools' ``_BlobStorageReader``) and runs the ``main`` function's operations in order. It implements
exactly the operations mtcnn-lab's three programs contain (:data:`OPS`) and refuses any other one, or a
damaged package, with a one-line :class:`~mtcnn_lab.errors.ConversionError`.

Numerics: each op computes in float32 (float32 sums, as a CPU runtime would) and its result is stored in the
dtype the program declares for that output, so in an FP16 program every op's output is rounded to float16,
as a float16 runtime stores its activations. Whether Core ML on a Mac accumulates a convolution in float16
or float32 cannot be seen off a Mac; the macOS test compares the two.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from mtcnn_lab.errors import ConversionError, ParameterError

__all__ = ["MilProgram", "OPS"]

F32 = np.float32


def _import_coremltools():
    try:
        import coremltools as ct
        from coremltools.libmilstoragepython import _BlobStorageReader
    except ImportError as err:
        raise ConversionError(f"executing Core ML programs needs coremltools ({err}); "
                              "pip install 'mtcnn-lab[coreml]'") from None
    return ct, _BlobStorageReader


def _conv(x, weight, bias=None, strides=(1, 1), pad_type="valid", pad=(0, 0, 0, 0), dilations=(1, 1), groups=1):
    """MIL ``conv``: cross-correlation of (N, C, H, W) with (O, C, kh, kw), no padding, any stride."""
    if pad_type not in ("valid", "custom") or any(pad) or tuple(dilations) != (1, 1) or int(groups) != 1:
        raise ConversionError(f"conv with pad_type={pad_type}, pad={list(pad)}, dilations={list(dilations)}, "
                              f"groups={groups} is not implemented (only valid, undilated, ungrouped convolutions)")
    sy, sx = (int(s) for s in strides)
    windows = sliding_window_view(x.astype(F32), weight.shape[2:], axis=(2, 3))[:, :, ::sy, ::sx]
    n, _, h, w = windows.shape[:4]
    columns = windows.transpose(0, 2, 3, 1, 4, 5).reshape(n * h * w, -1)  # im2col: (pixels, C * kh * kw)
    out = columns @ weight.astype(F32).reshape(len(weight), -1).T
    if bias is not None:
        out += bias.astype(F32)
    return out.reshape(n, h, w, -1).transpose(0, 3, 1, 2)


def _max_pool(x, kernel_sizes, strides, pad_type="valid", pad=(0, 0, 0, 0), ceil_mode=False):
    """MIL ``max_pool`` over the last two axes; with ``ceil_mode`` a last, partial window is kept when it
    starts inside the input (its missing cells are ignored)."""
    if pad_type not in ("valid", "custom") or any(pad):
        raise ConversionError(f"max_pool with pad_type={pad_type}, pad={list(pad)} is not implemented")
    (ky, kx), (sy, sx) = (int(k) for k in kernel_sizes), (int(s) for s in strides)

    def size(n, k, s):
        out = -(-(n - k) // s) + 1 if ceil_mode else (n - k) // s + 1
        return out - 1 if (out - 1) * s >= n else out

    h, w = size(x.shape[2], ky, sy), size(x.shape[3], kx, sx)
    padded = np.full((*x.shape[:2], (h - 1) * sy + ky, (w - 1) * sx + kx), -np.inf, x.dtype)
    padded[:, :, :min(x.shape[2], padded.shape[2]), :min(x.shape[3], padded.shape[3])] = \
        x[:, :, :padded.shape[2], :padded.shape[3]]
    return sliding_window_view(padded, (ky, kx), axis=(2, 3))[:, :, ::sy, ::sx].max(axis=(4, 5))


def _prelu(x, alpha):
    slope = alpha.astype(F32).reshape(1, -1, *([1] * (x.ndim - 2)))
    x = x.astype(F32)
    return np.where(x >= 0, x, x * slope)


def _cast(x, dtype):
    return x.astype({"fp16": np.float16, "fp32": F32}[str(dtype)])


OPS: dict[str, Callable] = {
    "conv": _conv,
    "prelu": _prelu,
    "max_pool": _max_pool,
    "linear": lambda x, weight, bias=None: x.astype(F32) @ weight.astype(F32).T + (0 if bias is None else bias),
    "transpose": lambda x, perm: np.transpose(x, [int(p) for p in perm]),
    "reshape": lambda x, shape: x.reshape([int(s) for s in shape]),
    "expand_dims": lambda x, axes: np.expand_dims(x, tuple(int(a) for a in axes)),
    "squeeze": lambda x, axes=None: np.squeeze(x, None if axes is None else tuple(int(a) for a in axes)),
    "cast": _cast,
}
"""The MIL operations executed (besides ``const``), as functions of the op's named inputs."""


class MilProgram:
    """The ``main`` function of a saved ``.mlpackage``'s ML Program, executable with :meth:`run`.

    >>> program = MilProgram("rnet_fp16.mlpackage")
    >>> outputs = program.run(crops)          # float32 (N, 3, 24, 24) -> the program's output, float32
    """

    def __init__(self, path: str | Path):
        ct, blob_reader = _import_coremltools()
        self.path = Path(path)
        try:
            spec = ct.utils.load_spec(str(self.path))
        except Exception as err:  # coremltools raises several kinds for a missing or damaged package
            raise ConversionError(f"{self.path}: not a readable Core ML package ({type(err).__name__}: "
                                  f"{str(err).splitlines()[0] if str(err) else ''}); convert it again with "
                                  "mtcnn-lab convert --to coreml --overwrite") from None
        if not spec.HasField("mlProgram") or "main" not in spec.mlProgram.functions:
            raise ConversionError(f"{self.path}: holds no ML Program with a main function (a neural-network "
                                  "model?); only ML Programs are executed")
        self._dtypes = {ct.proto.MIL_pb2.DataType.FLOAT16: np.float16, ct.proto.MIL_pb2.DataType.FLOAT32: F32}
        main = spec.mlProgram.functions["main"]
        self.opset = main.opset
        block = main.block_specializations[main.opset]
        self.input_names = [i.name for i in main.inputs]
        self.output_names = list(block.outputs)
        self.input_shapes = self._input_shapes(spec)
        self.default_input_shape = tuple(int(d) for d in spec.description.input[0].type.multiArrayType.shape)
        weights = self.path / "Data" / "com.apple.CoreML" / "weights"
        self._readers: dict[str, object] = {}
        self._weights_dir = weights
        self._blob_reader = blob_reader
        self.constants: dict[str, np.ndarray | str | list] = {}
        self.operations: list[tuple[str, dict[str, str], list[tuple[str, type]]]] = []
        for op in block.operations:
            self._add(op)
        self.op_types = sorted({op for op, _, _ in self.operations})

    @staticmethod
    def _input_shapes(spec) -> list[tuple[int | None, ...]]:
        array = spec.description.input[0].type.multiArrayType
        if array.enumeratedShapes.shapes:
            return [tuple(int(d) for d in s.shape) for s in array.enumeratedShapes.shapes]
        ranges = array.shapeRange.sizeRanges
        if ranges:
            return [tuple(None if r.lowerBound != r.upperBound else int(r.lowerBound) for r in ranges)]
        return [tuple(int(d) for d in array.shape)]

    def _add(self, op) -> None:
        if op.type == "const":
            self.constants[op.outputs[0].name] = self._constant(op)
            return
        if op.type not in OPS:
            raise ConversionError(f"{self.path}: MIL op {op.type!r} is not implemented by the executor "
                                  f"(it runs {', '.join(['const', *OPS])})")
        inputs = {}
        for key, argument in op.inputs.items():
            if len(argument.arguments) != 1 or not argument.arguments[0].HasField("name"):
                raise ConversionError(f"{self.path}: {op.type} input {key!r} is not a single named value")
            inputs[key] = argument.arguments[0].name
        outputs = [(o.name, self._dtype(o.type)) for o in op.outputs]
        self.operations.append((op.type, inputs, outputs))

    def _dtype(self, value_type):
        dtype = value_type.tensorType.dataType
        if dtype not in self._dtypes:
            raise ConversionError(f"{self.path}: tensor data type {dtype} is not implemented (float16, float32)")
        return self._dtypes[dtype]

    def _constant(self, op):
        value = op.attributes["val"]
        tensor_type = value.type.tensorType
        shape = [int(d.constant.size) for d in tensor_type.dimensions]
        if value.HasField("blobFileValue"):
            blob = value.blobFileValue
            name = Path(blob.fileName).name  # "@model_path/weights/weight.bin"
            reader = self._readers.get(name)
            if reader is None:
                reader = self._readers[name] = self._blob_reader(str(self._weights_dir / name))
            try:
                read = reader.read_fp16_data if self._dtype(value.type) == np.float16 else reader.read_float_data
                data = np.array(read(blob.offset))
                if self._dtype(value.type) == np.float16:
                    data = data.view(np.float16) if data.dtype == np.uint16 else data.astype(np.float16)
                return data.astype(self._dtype(value.type)).reshape(shape)
            except (RuntimeError, ValueError, OSError) as err:
                raise ConversionError(f"{self.path}: weight blob of {op.outputs[0].name!r} unreadable ({err}); "
                                      "convert it again with mtcnn-lab convert --to coreml --overwrite") from None
        tensor = value.immediateValue.tensor
        kind = tensor.WhichOneof("value")
        values = list(getattr(tensor, kind).values)
        if kind == "strings":
            return values[0] if not shape else values
        if kind == "bytes":  # float16 immediate values are stored as raw bytes
            return np.frombuffer(tensor.bytes.values, self._dtype(value.type)).reshape(shape)
        array = np.array(values, {"floats": F32, "ints": np.int64, "bools": bool, "longInts": np.int64,
                                  "doubles": np.float64}[kind])
        return array.reshape(shape) if shape else array.reshape(()) if array.size == 1 else array

    def check_input(self, x: np.ndarray) -> None:
        """ParameterError when ``x`` has a shape the program does not take."""
        for shape in self.input_shapes:
            if len(shape) == x.ndim and all(s is None or s == d for s, d in zip(shape, x.shape, strict=True)):
                return
        taken = ", ".join("x".join("N" if s is None else str(s) for s in shape) for shape in self.input_shapes[:4])
        more = f" and {len(self.input_shapes) - 4} more" if len(self.input_shapes) > 4 else ""
        raise ParameterError(f"{self.path.name} takes input shapes {taken}{more}, not {'x'.join(map(str, x.shape))}")

    def run(self, x: np.ndarray) -> np.ndarray:
        """Execute the program on its one input ``x`` (float32) and return its one output as float32."""
        x = np.asarray(x, F32)
        self.check_input(x)
        values: dict = {**self.constants, self.input_names[0]: x}
        for op_type, inputs, outputs in self.operations:
            result = OPS[op_type](**{key: values[name] for key, name in inputs.items()})
            (name, dtype), = outputs
            values[name] = np.asarray(result).astype(dtype, copy=False)
        return np.asarray(values[self.output_names[0]], F32)
