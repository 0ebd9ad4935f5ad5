"""Comparing with C++ OpenFace: layer-by-layer differences and detection parity.

The C++ references live in ``shared/reference`` (see its README): ``cpp_mtcnn_dev.json`` with the
final detections of 50 inputs and ``layers/<image>_<net>.npz`` with every layer's output.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .boxes import iou
from .detections import Detections
from .reference import apply_layer, fc_input, forward_layers
from .weights import NetSpec, WeightSet


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


def backend_layer_differences(backend, weights: WeightSet, net: str, batch: np.ndarray) -> dict[str, dict]:
    """Per-layer (when the backend can tap its layers) and output differences from the numpy reference.

    ``backend`` is any backend; ``net`` one of ``pnet``, ``rnet``, ``onet``; ``batch`` a float32
    input batch for that net. Keys are layer names (``l00_conv`` ...) and ``output``.
    """
    expected = forward_layers(weights.nets()[net], batch)
    table = layer_differences(backend.run_layers(net, batch), expected) if hasattr(backend, "run_layers") else {}
    last = weights.nets()[net].layer_keys()[-1]
    output = getattr(backend, f"run_{net}")(batch)
    table["output"] = layer_differences({last: output}, {last: expected[last]})[last]
    return table


# --------------------------------------------------------------------------------------------
# detection parity


@dataclass(frozen=True)
class ParityRow:
    """One input compared with C++: face counts and the largest differences over its faces."""

    image: str
    cpp_faces: int
    faces: int
    bbox: float
    bbox_pre_correction: float
    confidence: float
    landmarks: float
    min_iou: float

    @property
    def same_count(self) -> bool:
        """True when both found the same number of faces."""
        return self.cpp_faces == self.faces


def load_cpp_reference(path: str | Path) -> list[dict]:
    """The ``results`` list of a C++ reference JSON (``cpp_mtcnn_dev.json`` schema)."""
    return json.loads(Path(path).read_text())["results"]


def parity_row(detections: Detections, cpp: dict) -> ParityRow:
    """Compare one image's detections with its C++ entry, face by face in output order.

    Faces are paired by position in the output order, which OpenFace fixes (final NMS pick order);
    with different counts only the count is meaningful and the differences are ``inf``.
    """
    faces = cpp["faces"]
    if len(faces) != len(detections):
        inf = float("inf")
        return ParityRow(cpp["image"], len(faces), len(detections), inf, inf, inf, inf, 0.0)
    if not faces:
        return ParityRow(cpp["image"], 0, 0, 0.0, 0.0, 0.0, 0.0, 1.0)

    def worst(field: str, ours: np.ndarray) -> float:
        return float(np.abs(np.array([f[field] for f in faces], np.float64) - ours).max())

    cpp_boxes = np.array([f["bbox"] for f in faces])
    return ParityRow(
        cpp["image"], len(faces), len(detections),
        bbox=worst("bbox", detections.boxes),
        bbox_pre_correction=worst("bbox_pre_correction", detections.boxes_pre_correction),
        confidence=worst("confidence", detections.confidences),
        landmarks=worst("landmarks", detections.landmarks),
        min_iou=float(np.diag(iou(detections.boxes, cpp_boxes)).min()),
    )


@dataclass(frozen=True)
class Agreement:
    """How far one run's detections are from another's (e.g. FP16 vs FP32) on one image.

    Faces are matched greedily by IoU (>= ``min_iou``); ``ious`` and ``px_errors`` (largest
    |difference| of x, y, w, h) are per matched face.
    """

    image: str
    faces_a: int
    faces_b: int
    matched: int
    ious: tuple[float, ...]
    px_errors: tuple[float, ...]

    @property
    def same_count(self) -> bool:
        """True when both runs found the same number of faces."""
        return self.faces_a == self.faces_b


def match_faces(a: np.ndarray, b: np.ndarray, min_iou: float = 0.3) -> list[tuple[int, int, float]]:
    """Greedy one-to-one matching of boxes ``a`` to ``b`` by descending IoU: ``(i, j, iou)`` pairs."""
    m = iou(a, b)
    pairs = []
    while m.size and m.max() >= min_iou:
        i, j = np.unravel_index(np.argmax(m), m.shape)
        pairs.append((int(i), int(j), float(m[i, j])))
        m[i, :], m[:, j] = -1, -1
    return pairs


def agreement(image: str, a: Detections, b: Detections, min_iou: float = 0.3) -> Agreement:
    """Compare two runs on one image (see :class:`Agreement`)."""
    pairs = match_faces(a.boxes, b.boxes, min_iou)
    px = [float(np.abs(a.boxes[i].astype(np.float64) - b.boxes[j]).max()) for i, j, _ in pairs]
    return Agreement(image, len(a), len(b), len(pairs), tuple(v for *_, v in pairs), tuple(px))


def summarise_agreement(rows: list[Agreement]) -> dict:
    """Totals over images: count agreement, IoU mean/median/min, share of IoU > 0.99, max px error."""
    ious = np.array([v for r in rows for v in r.ious])
    px = np.array([v for r in rows for v in r.px_errors])
    return {
        "images": len(rows),
        "images_same_count": sum(r.same_count for r in rows),
        "faces_a": sum(r.faces_a for r in rows), "faces_b": sum(r.faces_b for r in rows),
        "matched": int(len(ious)),
        "iou_mean": float(ious.mean()) if len(ious) else None,
        "iou_median": float(np.median(ious)) if len(ious) else None,
        "iou_min": float(ious.min()) if len(ious) else None,
        "share_iou_above_0.99": float((ious > 0.99).mean()) if len(ious) else None,
        "max_px_error": float(px.max()) if len(px) else None,
    }
