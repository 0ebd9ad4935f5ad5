"""Which parts of the saved Core ML programs the Neural Engine can take, by what Apple and coremltools document.

Read off the ``.mlpackage`` files themselves (:class:`~mtcnn_lab.nets.mil.MilProgram`): each program's operations,
its compute dtype, its input shapes and its size; then the documented rules applied to them (:data:`SOURCES`):

* dtype: a float16-typed ML program may run on the Neural Engine, GPU and CPU; a float32-typed one on the GPU and
  CPU only (coremltools, "Typed Execution Workflow Example");
* shapes: enumerated shapes (at most 128) are compiled ahead for each shape, and each can run on the Neural
  Engine; with a ranged dimension only the default shape runs there, other sizes on the GPU or CPU (coremltools,
  "Flexible Input Shapes"; an Apple engineer in Apple Developer Forums thread 724930).

What cannot be known off a Mac is said in the table: Core ML places each operation by a cost model that depends on
the chip, the OS version and the operations (Apple Developer Forums thread 763368); ``MLComputePlan`` (macOS 14.4 /
iOS 17.4 and later) reports each operation's preferred and supported devices on the Mac itself.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from mtcnn_lab.convert.coreml import tree_bytes
from mtcnn_lab.nets.mil import MilProgram

__all__ = ["SOURCES", "OFF_MAC", "ane_eligibility"]

SOURCES = {
    "typed_execution": "coremltools guide, Typed Execution Workflow Example "
                       "(apple.github.io/coremltools/docs-guides/source/typed-execution-example.html)",
    "flexible_shapes": "coremltools guide, Flexible Input Shapes "
                       "(apple.github.io/coremltools/docs-guides/source/flexible-inputs.html)",
    "range_default_only": "Apple Developer Forums thread 724930, answer by an Apple engineer "
                          "(developer.apple.com/forums/thread/724930)",
    "cost_model": "Apple Developer Forums thread 763368 (developer.apple.com/forums/thread/763368)",
    "compute_plan": "Core ML documentation, MLComputePlan.DeviceUsage (developer.apple.com/documentation/coreml)",
}
"""The documents the rules come from."""

OFF_MAC = ("per-operation placement and speed: Core ML's cost model depends on the chip, the OS version and the "
           "operations; run MLComputePlan (macOS 14.4+) on a Mac to read each operation's preferred device")
"""What the table cannot say, off a Mac."""

MAX_ENUMERATED = 128


def _shape_rule(shapes: list[tuple[int | None, ...]], default: tuple[int, ...]) -> tuple[str, tuple[str, ...]]:
    """What the documents say of these input shapes, and which documents say it."""
    if len(shapes) > MAX_ENUMERATED:
        return f"{len(shapes)} enumerated shapes: more than Core ML takes", ("flexible_shapes",)
    if len(shapes) > 1:
        return (f"{len(shapes)} enumerated shapes: each can run on the Neural Engine",
                ("flexible_shapes", "range_default_only"))
    if any(d is None for d in shapes[0]):
        return (f"a ranged dimension: only the default shape {'x'.join(map(str, default))} on the Neural Engine, "
                "other sizes on the GPU or CPU", ("range_default_only",))
    return "one fixed shape: can run on the Neural Engine", ("flexible_shapes",)


def _verdict(compute: str, shapes: list[tuple[int | None, ...]], default: tuple[int, ...]) -> str:
    if compute != "float16" or len(shapes) > MAX_ENUMERATED:
        return "not eligible"
    if len(shapes) == 1 and None in shapes[0]:
        return f"the default shape {'x'.join(map(str, default))} only"
    return "every input shape"


def ane_eligibility(packages: dict[tuple[str, str], Path]) -> list[dict]:
    """One row per saved program ``{(net, precision): .mlpackage path}``: operations, compute dtype, input
    shapes, size in bytes, and what the documented rules say about the Neural Engine (see the module
    docstring; ``sources`` names the documents, ``unknown_off_mac`` what only a Mac can tell)."""
    rows = []
    for (net, precision), path in sorted(packages.items()):
        program = MilProgram(path)
        ops = Counter(op for op, _, _ in program.operations)
        dtypes = {np.dtype(dtype).name for _, _, outputs in program.operations for _name, dtype in outputs}
        compute = "float16" if "float16" in dtypes else "float32"
        dtype_rule = ("float16-typed: eligible for the Neural Engine, GPU and CPU" if compute == "float16"
                      else "float32-typed: GPU and CPU only, not the Neural Engine")
        shape_rule, shape_sources = _shape_rule(program.input_shapes, program.default_input_shape)
        rows.append({
            "net": net, "precision": precision, "file": Path(path).name,
            "ops": ", ".join(f"{op} x{n}" for op, n in sorted(ops.items())),
            "compute_dtype": compute, "input_shapes": len(program.input_shapes),
            "input": "x".join("N" if d is None else str(d) for d in program.input_shapes[0]),
            "bytes": tree_bytes(Path(path)), "dtype_rule": dtype_rule, "shape_rule": shape_rule,
            "neural_engine": _verdict(compute, program.input_shapes, program.default_input_shape),
            "sources": "; ".join(SOURCES[key] for key in ("typed_execution", *shape_sources, "cost_model",
                                                           "compute_plan")),
            "unknown_off_mac": OFF_MAC,
        })
    return rows
