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

from mtcnn_lab.backends.base import ONE_INPUT_PER_CALL
from mtcnn_lab.cascade.boxes import iou
from mtcnn_lab.detections import Detections
from mtcnn_lab.nets.reference import apply_layer, fc_input, forward_layers
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


def backend_layer_differences(backend, weights: WeightSet, net: str, batch: np.ndarray) -> dict[str, dict]:
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


# --------------------------------------------------------------------------------------------
# realistic network inputs and PNet proposal shifts (notebooks 03 and 04)


def cascade_net_inputs(image: np.ndarray, weights: WeightSet, params=None,
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
    from mtcnn_lab.params import CascadeParams

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


class _Replay:
    """A PNet-only backend that replays recorded heat maps in call order (see :func:`pnet_offset_shift`)."""

    name = "replay"
    batch_limits = ONE_INPUT_PER_CALL

    def __init__(self, maps: list[np.ndarray]):
        self.maps = list(maps)

    def run_pnet(self, images: np.ndarray) -> np.ndarray:
        return self.maps.pop(0)


class _Recorder:
    """Wraps a backend and keeps every PNet output it returns."""

    def __init__(self, backend):
        self.backend, self.name, self.maps = backend, backend.name, []
        self.batch_limits = backend.batch_limits

    def run_pnet(self, images: np.ndarray) -> np.ndarray:
        self.maps.append(self.backend.run_pnet(images))
        return self.maps[-1]


def pnet_offset_shift(image: np.ndarray, reference, other, params=None) -> dict:
    """How PNet's square integer proposals change when its box offsets come from ``other`` (e.g. FP16).

    Stage 1 of the cascade (:func:`~mtcnn_lab.cascade.stages.stage_pnet`) is run with ``reference``, with
    ``other``, and once more with ``reference``'s face scores and ``other``'s regression offsets
    (channels 2-5), replayed from the first two runs: the same cells pass the threshold and the NMS
    in the same order, so the proposals pair up one to one and any change comes from the offsets
    alone, through the truncation of the regressed, squared boxes to integers.

    Returns ``proposals`` (reference count), ``moved`` (proposals whose integer x, y or side
    differs), ``shifts`` (per proposal the largest |Δ| of x, y, side in px), ``offsets_max_abs``
    (largest |Δ| of any offset over every heat-map cell), and for the full ``other`` run
    ``proposals_other`` and ``identical`` (reference proposals found exactly among them).
    """
    from mtcnn_lab.cascade.stages import stage_pnet
    from mtcnn_lab.io.images import as_bgr_uint8
    from mtcnn_lab.params import CascadeParams

    image = as_bgr_uint8(image)
    params = params or CascadeParams()
    ref, oth = _Recorder(reference), _Recorder(other)
    boxes_ref = stage_pnet(image, ref, params)
    boxes_other = stage_pnet(image, oth, params)
    mixed = []
    for a, b in zip(ref.maps, oth.maps, strict=True):
        m = a.copy()
        m[:, 2:6] = b[:, 2:6]
        mixed.append(m)
    boxes_mixed = stage_pnet(image, _Replay(mixed), params)
    shifts = np.abs(boxes_mixed[:, :3] - boxes_ref[:, :3]).max(axis=1, initial=0) if len(boxes_ref) else \
        np.zeros(0, np.int64)
    offsets = max((float(np.abs(a[:, 2:6].astype(np.float64) - b[:, 2:6]).max(initial=0.0))
                   for a, b in zip(ref.maps, oth.maps, strict=True)), default=0.0)
    found = {tuple(b) for b in boxes_other.tolist()}
    return {
        "proposals": len(boxes_ref),
        "moved": int((shifts > 0).sum()),
        "shifts": shifts.astype(np.int64),
        "offsets_max_abs": offsets,
        "proposals_other": len(boxes_other),
        "identical": sum(tuple(b) in found for b in boxes_ref.tolist()),
    }


# --------------------------------------------------------------------------------------------
# end-to-end tables against C++ (notebook 05): per face, per image, per group, per backend

DELTA_FIELDS = ("dx", "dy", "dw", "dh")
"""Box differences of :func:`box_deltas`: centre offset (dx, dy) and size difference (dw, dh), in px."""


def box_deltas(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise ``(dx, dy, dw, dh)`` of boxes ``a`` minus boxes ``b`` (both ``x, y, w, h``), float64 (N, 4).

    ``dx, dy`` compare the box centres ``x + w/2, y + h/2``, ``dw, dh`` the sizes, so a box that
    grew symmetrically has ``dx = dy = 0`` and a shifted box ``dw = dh = 0``.
    """
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    if a.shape != b.shape:
        raise ValueError(f"box_deltas needs as many boxes on both sides, got {len(a)} and {len(b)}")
    centre = (a[:, :2] + a[:, 2:] / 2) - (b[:, :2] + b[:, 2:] / 2)
    return np.concatenate([centre, a[:, 2:] - b[:, 2:]], axis=1)


def compare_with_cpp(image: str, detections: Detections, cpp_faces: list[dict] | None, *, backend: str = "",
                     group: str = "", min_iou: float = 0.3) -> dict:
    """One backend's detections on one image against the C++ faces, face by face.

    Faces are paired with :func:`match_faces` (greedy by IoU >= ``min_iou``). Returns a dict with
    ``backend``, ``group``, ``image``, the counts ``cpp_faces``, ``python_faces``, ``matched``,
    ``same_count``, ``agree`` (same count and every face matched) and ``faces``: one row per C++ face
    in reference order (with its Python partner or none), then the unmatched Python faces. A face row
    has ``cpp_face`` / ``python_face`` (indices or ``None``), ``matched``, ``iou``, ``one_minus_iou``,
    ``dx, dy, dw, dh`` (Python minus C++, px; :func:`box_deltas`), both confidences and both boxes.
    ``cpp_faces=None`` (no reference entry) counts as no C++ face.
    """
    cpp_faces = list(cpp_faces or [])
    cpp_boxes = np.array([f["bbox"] for f in cpp_faces], np.float64).reshape(-1, 4)
    py_boxes = np.asarray(detections.boxes, np.float64).reshape(-1, 4)
    pairs = {j: (i, v) for i, j, v in match_faces(py_boxes, cpp_boxes, min_iou)}
    base = {"backend": backend, "group": group, "image": image}
    faces = []
    for j, face in enumerate(cpp_faces):
        row = {**base, "cpp_face": j, "python_face": None, "matched": False, "iou": None, "one_minus_iou": None,
               **dict.fromkeys(DELTA_FIELDS), "cpp_confidence": face.get("confidence"), "python_confidence": None,
               "cpp_bbox": [float(v) for v in cpp_boxes[j]], "python_bbox": None}
        if j in pairs:
            i, value = pairs[j]
            deltas = box_deltas(py_boxes[i], cpp_boxes[j])[0]
            row.update(python_face=i, matched=True, iou=value, one_minus_iou=1.0 - value,
                       **{k: float(d) for k, d in zip(DELTA_FIELDS, deltas, strict=True)},
                       python_confidence=float(detections.confidences[i]),
                       python_bbox=[float(v) for v in py_boxes[i]])
        faces.append(row)
    partnered = {i for i, _ in pairs.values()}
    for i in range(len(py_boxes)):
        if i not in partnered:
            faces.append({**base, "cpp_face": None, "python_face": i, "matched": False, "iou": None,
                          "one_minus_iou": None, **dict.fromkeys(DELTA_FIELDS), "cpp_confidence": None,
                          "python_confidence": float(detections.confidences[i]), "cpp_bbox": None,
                          "python_bbox": [float(v) for v in py_boxes[i]]})
    same = len(cpp_faces) == len(py_boxes)
    return {**base, "cpp_faces": len(cpp_faces), "python_faces": len(py_boxes), "matched": len(pairs),
            "same_count": same, "agree": same and len(pairs) == len(cpp_faces), "faces": faces}


def per_face_rows(comparisons: list[dict]) -> list[dict]:
    """The face rows of :func:`compare_with_cpp` results, flattened in order (the per-face table)."""
    return [face for c in comparisons for face in c["faces"]]


def summarise_comparisons(comparisons: list[dict], by: tuple[str, ...] = ("backend",)) -> list[dict]:
    """Aggregate :func:`compare_with_cpp` results per value of the ``by`` keys (in order of first appearance).

    Each row: the ``by`` values, ``images``, ``images_same_count``, ``images_agree``, ``faces_cpp``,
    ``faces_python``, ``matched``, ``iou_mean``, ``iou_median``, ``iou_min``, ``share_iou_above_0.99``,
    ``one_minus_iou_mean``/``_max``, ``exact`` (matched faces with IoU exactly 1), and for each of
    ``dx, dy, dw, dh`` the mean and max of its absolute value (``dx_mean_abs``, ``dx_max_abs``, ...),
    ``centre_max_abs`` (largest |dx| or |dy|) and ``size_max_abs`` (largest |dw| or |dh|). Statistics
    over no matched face are ``None``.
    """
    groups: dict[tuple, list[dict]] = {}
    for c in comparisons:
        groups.setdefault(tuple(c[k] for k in by), []).append(c)
    rows = []
    for key, members in groups.items():
        matched = [f for c in members for f in c["faces"] if f["matched"]]
        ious = np.array([f["iou"] for f in matched], np.float64)
        deltas = np.abs(np.array([[f[k] for k in DELTA_FIELDS] for f in matched], np.float64).reshape(-1, 4))
        some = len(ious) > 0
        row = dict(zip(by, key, strict=True))
        row.update(
            images=len(members),
            images_same_count=sum(c["same_count"] for c in members),
            images_agree=sum(c["agree"] for c in members),
            faces_cpp=sum(c["cpp_faces"] for c in members),
            faces_python=sum(c["python_faces"] for c in members),
            matched=len(matched),
            iou_mean=float(ious.mean()) if some else None,
            iou_median=float(np.median(ious)) if some else None,
            iou_min=float(ious.min()) if some else None,
            **{"share_iou_above_0.99": float((ious > 0.99).mean()) if some else None},
            one_minus_iou_mean=float((1.0 - ious).mean()) if some else None,
            one_minus_iou_max=float((1.0 - ious).max()) if some else None,
            exact=int((ious == 1.0).sum()),
        )
        for k, name in enumerate(DELTA_FIELDS):
            row[f"{name}_mean_abs"] = float(deltas[:, k].mean()) if some else None
            row[f"{name}_max_abs"] = float(deltas[:, k].max()) if some else None
        row["centre_max_abs"] = float(deltas[:, :2].max()) if some else None
        row["size_max_abs"] = float(deltas[:, 2:].max()) if some else None
        rows.append(row)
    return rows


def pivot_summary(summary: list[dict], index: str = "group", columns: str = "backend",
                  values: tuple[str, ...] = ("iou_mean", "iou_min", "images_agree"),
                  keep: tuple[str, ...] = ("images", "faces_cpp")) -> list[dict]:
    """A paper-style wide table from :func:`summarise_comparisons` rows grouped by ``(index, columns)``.

    One row per ``index`` value (first-appearance order) with the ``keep`` fields of its first
    summary row, then ``"<column value> <value>"`` for every column value and every ``values`` field
    (``None`` where that combination is missing), e.g. ``{"group": "multi_face", "images": 3,
    "faces_cpp": 9, "numpy iou_mean": 1.0, "numpy iou_min": 1.0, "numpy images_agree": 3, ...}``.
    """
    col_values = list(dict.fromkeys(r[columns] for r in summary))
    cells = {(r[index], r[columns]): r for r in summary}
    rows = []
    for idx in dict.fromkeys(r[index] for r in summary):
        first = next(r for r in summary if r[index] == idx)
        row = {index: idx, **{k: first.get(k) for k in keep}}
        for col in col_values:
            cell = cells.get((idx, col))
            for value in values:
                row[f"{col} {value}"] = None if cell is None else cell.get(value)
        rows.append(row)
    return rows


def format_iou_cell(row: dict | None, digits: int = 6) -> str:
    """A table cell ``"mean / min (agree/images)"`` for a :func:`summarise_comparisons` row (``–`` if none)."""
    if row is None:
        return "–"
    agree = f"({row['images_agree']}/{row['images']})"
    if row["iou_mean"] is None:
        return f"no match {agree}"
    return f"{row['iou_mean']:.{digits}f} / {row['iou_min']:.{digits}f} {agree}"


def markdown_table(summary: list[dict], index: str = "group", columns: str = "backend",
                   cell=format_iou_cell) -> str:
    """:func:`summarise_comparisons` rows as a Markdown table: rows ``index``, columns ``columns``, ``cell(row)``."""
    col_values = list(dict.fromkeys(r[columns] for r in summary))
    cells = {(r[index], r[columns]): r for r in summary}
    lines = ["| " + " | ".join([index, *col_values]) + " |", "|" + "---|" * (len(col_values) + 1)]
    for idx in dict.fromkeys(r[index] for r in summary):
        lines.append("| " + " | ".join([str(idx), *(cell(cells.get((idx, c))) for c in col_values)]) + " |")
    return "\n".join(lines)
