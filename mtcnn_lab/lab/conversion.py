"""Reports on converted models: what was written and how far its outputs are from the numpy reference."""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import numpy as np

from mtcnn_lab.backends.onnx import OnnxBackend
from mtcnn_lab.convert.onnx import require_onnx
from mtcnn_lab.lab.layers import backend_layer_differences
from mtcnn_lab.weights.netspec import WeightSet


def onnx_report(weights: WeightSet, paths: dict[str, Path], fp16: bool = False) -> dict:
    """What ``export_onnx`` wrote: per model its size, SHA-256, opset, op counts, and the max/mean
    |difference| of its outputs from the numpy reference on fixed random inputs."""
    onnx = require_onnx()
    backend = OnnxBackend(weights, providers=["CPUExecutionProvider"], precision="fp16-all" if fp16 else "fp32",
                          model_dir=next(iter(paths.values())).parent)
    shapes = {"pnet": (1, 3, 216, 384), "rnet": (16, 3, 24, 24), "onet": (16, 3, 48, 48)}
    rng = np.random.default_rng(0)
    models = {}
    for net, path in paths.items():
        model = onnx.load(str(path))
        x = rng.uniform(-1, 1, shapes[net]).astype(np.float32)
        models[net] = {
            "file": path.name, "bytes": path.stat().st_size,
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "opset": max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
            "ops": dict(sorted(Counter(n.op_type for n in model.graph.node).items())),
            "vs_numpy_reference": {"input_shape": list(shapes[net]),
                                   **backend_layer_differences(backend, weights, net, x)["output"]},
        }
    return {"format": "onnx", "fp16": fp16, "weights": weights.name, "models": models}
