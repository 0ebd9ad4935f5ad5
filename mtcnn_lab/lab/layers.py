"""Layer by layer: each net's layers against C++ OpenFace's layer dumps or the numpy reference, and the
network inputs the cascade feeds (``reference/layers/<image>_<net>.npz`` of the reference data, every
layer's output; ``data/README.md``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from mtcnn_lab.backends.base import Backend
from mtcnn_lab.nets.reference import apply_layer, fc_input, forward_layers
from mtcnn_lab.params import CascadeParams
from mtcnn_lab.weights.netspec import CROP_SIZES, NetSpec, WeightSet


def layer_differences(outputs: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> dict[str, dict]:
    """Max and mean absolute difference for every key present in both dicts (shapes must match)."""
    table = {}
    for key, value in outputs.items():
        if key == "in" or key not in expected:
            continue
        ref = np.asarray(expected[key])
        if ref.shape != value.shape:
            raise ValueError(f"layer {key}: shape {value.shape} differs from the reference {ref.shape}")
        diff = np.abs(value.astype(np.float64) - ref)
        table[key] = {"max_abs": float(diff.max(initial=0.0)), "mean_abs": float(diff.mean()) if diff.size else 0.0}
    return table


def cpp_layer_dumps(path: str | Path) -> dict[str, dict[str, np.ndarray]]:
    """Read a C++ dump ``<image>_<net>.npz`` as ``{group: {layer key: batch array}}``.

    PNet dumps have one group per dumped pyramid scale (``"s0"``, ``"s9"``...; maps get a batch
    axis of 1); RNet/ONet dumps one group ``"crops"`` with the first crops stacked on axis 0.
    """
    with np.load(path) as data:
        content = {key: data[key] for key in data.files}
    if "dumped_scale_indices" not in content:
        return {"crops": content}
    groups = {}
    for index in content["dumped_scale_indices"]:
        prefix = f"s{int(index)}_"
        groups[prefix[:-1]] = {key[len(prefix):]: value[None] if key[len(prefix):] != "resized_hwc_bgr"
                               else value for key, value in content.items() if key.startswith(prefix)}
    return groups


def isolated_layers(spec: NetSpec, dumps: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each layer of ``spec`` applied to the C++ output of the layer before it (``in`` for the first).

    Differences then measure one layer's arithmetic alone, without error carried from earlier layers.
    """
    outputs, previous = {}, "in"
    for key, layer in zip(spec.layer_keys(), spec.layers, strict=True):
        x = dumps[previous]
        if key.endswith("_fc") and x.ndim == 4 and x.shape[1] != layer.weight.shape[1]:
            outputs[key.replace("_fc", "_fcin")] = fc_input(x.swapaxes(0, 1)).T
        outputs[key] = apply_layer(x, layer)
        previous = key
    return outputs


def compare_with_cpp_layers(spec: NetSpec, dump_path: str | Path, chained: bool = True,
                            run: Callable[[NetSpec, np.ndarray], dict[str, np.ndarray]] = forward_layers,
                            ) -> dict[str, dict[str, dict]]:
    """Diff every layer against a C++ dump, per dump group.

    ``chained=True``: ``run`` (by default the reference CNN) is fed the C++ network input ``in``
    and its own layer outputs flow on. ``chained=False``: every layer gets the C++ input of that
    layer (:func:`isolated_layers`).
    """
    groups = cpp_layer_dumps(dump_path)
    if chained:
        return {g: layer_differences(run(spec, arrays["in"]), arrays) for g, arrays in groups.items()}
    return {g: layer_differences(isolated_layers(spec, arrays), arrays) for g, arrays in groups.items()}


def backend_layer_differences(backend: Backend, weights: WeightSet, net: str, batch: np.ndarray) -> dict[str, dict]:
    """Per-layer (when the backend can tap its layers) and output differences from the numpy reference.

    ``backend`` is any backend; ``net`` one of ``pnet``, ``rnet``, ``onet``; ``batch`` a float32
    input batch for that net. Keys are layer names (``l00_conv`` ...) and ``output``.
    """
    expected = forward_layers(weights.nets()[net], batch)
    table = layer_differences(backend.run_layers(net, batch), expected) if backend.layer_taps else {}
    last = weights.nets()[net].layer_keys()[-1]
    output = {"pnet": backend.run_pnet, "rnet": backend.run_rnet, "onet": backend.run_onet}[net](batch)
    table["output"] = layer_differences({last: output}, {last: expected[last]})[last]
    return table


def cascade_net_inputs(image: np.ndarray, weights: WeightSet, params: CascadeParams | None = None,
                       max_crops: int | None = None) -> dict[str, np.ndarray]:
    """Real input batches of PNet, RNet and ONet for one BGR uint8 image, as the cascade feeds them.

    ``pnet``: the first (largest) pyramid level, (1, 3, h, w); ``rnet`` / ``onet``: the crops
    (N, 3, 24, 24) / (N, 3, 48, 48) of the boxes the numpy reference cascade passes to RNet and
    ONet, the first ``max_crops`` of each (all when ``None``). A stage without boxes gets an empty
    batch. ``params`` is a :class:`~mtcnn_lab.cascade.stages.CascadeParams` (default OpenFace's).
    """
    from mtcnn_lab.backends.numpy import NumpyBackend
    from mtcnn_lab.cascade.crops import crop_boxes
    from mtcnn_lab.cascade.pyramid import pyramid_levels
    from mtcnn_lab.cascade.stages import run_cascade
    from mtcnn_lab.io.images import as_bgr_uint8

    image = as_bgr_uint8(image)
    params = params or CascadeParams()
    levels = pyramid_levels(image, params.min_face, params.factor)
    if not levels:
        raise ValueError(f"image of {image.shape[1]}x{image.shape[0]} px is too small for min_face={params.min_face}")
    trace = run_cascade(image, NumpyBackend(weights), params, trace=True).trace
    batches = {"pnet": levels[0][1][None]}
    for net, key in (("rnet", "rnet_input_boxes"), ("onet", "onet_input_boxes")):
        size = CROP_SIZES[net]
        boxes = np.asarray(trace[key], np.int64).reshape(-1, 4)[:max_crops]
        batches[net] = crop_boxes(image, boxes, size) if len(boxes) else np.zeros((0, 3, size, size), np.float32)
    return batches
