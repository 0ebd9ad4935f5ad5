"""The workbench notebooks' paper figures, each sized for print: one column (:data:`COLUMN_WIDTH`) or both
(:data:`TEXT_WIDTH`), legends inside the figure, text at 6 pt or more, backend colours from :data:`COLORS`.

Every function returns a new matplotlib figure; call it inside :func:`~mtcnn_lab.lab.figures.paper_style` and
save it there with :func:`~mtcnn_lab.lab.figures.save_figure`. Boxes are ``x, y, w, h`` in pixels, images
BGR uint8, times in milliseconds.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from mtcnn_lab.lab.figures import (
    COLORS,
    COLUMN_WIDTH,
    TEXT_WIDTH,
    FacesLike,
    as_arrays,
    color_for,
    layer_axis,
    legend_handles,
    overlay,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from mtcnn_lab.lab.decoders import ProfileRun
    from mtcnn_lab.weights.netspec import WeightSet

NETS = ("pnet", "rnet", "onet")
NET_COLORS = {"pnet": COLORS["numpy"], "rnet": COLORS["torch"], "onet": COLORS["onnx"]}
"""One colour per net where a figure shows the three nets together."""
STAGES = ("pyramid", "pnet", "proposals_nms", "crops", "rnet", "onet")
"""Cascade stages in the order they run (the keys of a benchmark's ``stage_share``)."""


def _figure(width: float, height: float, **subplots: Any) -> tuple[Figure, Any]:
    """A figure ``width`` x ``height`` inches with constrained layout, so that outside legends stay inside it."""
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(width, height), layout="constrained", **subplots)


def _top_legend(fig: Figure, handles: Sequence, ncol: int) -> None:
    """One legend for the whole figure, above the axes and inside the figure."""
    fig.legend(handles=list(handles), loc="outside upper center", ncol=ncol, handlelength=1.8, columnspacing=1.2)


# --------------------------------------------------------------------------------------------
# 01 · weights


def weight_histograms(weights: WeightSet) -> Figure:
    """Text width: per net, the density of every conv/FC layer's weights on a log scale, one legend per net."""
    fig, axes = _figure(TEXT_WIDTH, 2.3, ncols=3, sharey=True)
    for ax, net in zip(axes, NETS, strict=True):
        spec = weights.nets()[net]
        for key, layer in zip(spec.layer_keys(), spec.layers, strict=True):
            if layer.kind in ("conv", "fc"):
                ax.hist(layer.weight.ravel(), bins=80, histtype="step", density=True, label=key, linewidth=1.0)
        ax.set_title(net.upper())
        ax.set_xlabel("weight value")
        ax.set_yscale("log")
        ax.legend(fontsize=6, handlelength=1.0, labelspacing=0.2, loc="upper right", borderaxespad=0.0)
    axes[0].set_ylabel("density")
    axes[0].set_ylim(top=axes[0].get_ylim()[1] * 100)  # headroom for the legends
    return fig


def prelu_slopes(weights: WeightSet, gap: int = 16) -> Figure:
    """Text width: every PReLU slope in network order, one colour per net, each layer's key under its slopes.

    ``gap`` empty positions separate consecutive layers.
    """
    from matplotlib.lines import Line2D

    from mtcnn_lab.weights.netspec import PReLU

    fig, ax = _figure(TEXT_WIDTH, 2.2)
    position, ticks, labels = 0, [], []
    for net in NETS:
        spec = weights.nets()[net]
        for key, layer in zip(spec.layer_keys(), spec.layers, strict=True):
            if isinstance(layer, PReLU):
                x = position + np.arange(len(layer.slopes))
                ax.plot(x, layer.slopes, ".", ms=2.5, color=NET_COLORS[net])
                ticks.append(position + (len(layer.slopes) - 1) / 2)
                labels.append(key[:3])
                position += len(layer.slopes) + gap
    ax.axhline(0, color="0.6", lw=0.5)
    ax.axhline(1, color="0.6", lw=0.5, ls=":")
    ax.set_xticks(ticks, labels, fontsize=6, rotation=90)
    ax.set_xlabel("PReLU layer (its channels or neurons in order)")
    ax.set_ylabel("slope")
    ax.legend(handles=[Line2D([], [], ls="", marker="o", ms=3, color=NET_COLORS[n], label=n.upper()) for n in NETS],
              loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, handletextpad=0.2)
    return fig


# --------------------------------------------------------------------------------------------
# 02 · porting mistakes

# label offsets in points and alignment, placed by eye so that no label overlaps another or the axes
_MISTAKE_LABELS = {"bgr_input": (8, -10, "left"), "kernel_transposed": (5, -2, "left"),
                   "row_major_reshape": (6, 3, "left"), "resize_area": (2, 6, "right"),
                   "normalise_first_channel": (4, 6, "center"), "no_normalisation": (2, -10, "right")}


def mistake_signatures(rows: Sequence[Mapping[str, Any]], reported: Mapping[str, float]) -> Figure:
    """One column: each porting mistake's layer-0 mean |Δ| against its channel-1 correlation, the ones with
    the reported character highlighted, the reported values as a star.

    ``rows`` as :func:`mtcnn_lab.lab.divergence.investigate` returns them; ``reported`` has ``mean_abs`` and ``corr``.
    """
    fig, ax = _figure(COLUMN_WIDTH, 2.6)
    for r in rows:
        hit = r["matches_report"]
        ax.scatter(r["mean_abs"], r["ch1_corr"], s=18 if hit else 8, color=COLORS["numpy"] if hit else "0.55",
                   zorder=3 if hit else 2)
        if r["name"] in _MISTAKE_LABELS:
            dx, dy, ha = _MISTAKE_LABELS[r["name"]]
            ax.annotate(r["name"], (r["mean_abs"], r["ch1_corr"]), fontsize=6, xytext=(dx, dy), ha=ha,
                        textcoords="offset points")
    ax.set_ylim(-0.95, 1.25)
    ax.scatter(reported["mean_abs"], reported["corr"], marker="*", s=60, color=COLORS["torch"], label="reported",
               zorder=4)
    ax.set_xscale("log")
    ax.set_xlabel("mean |Δ| of layer 0")
    ax.set_ylabel("channel-1 correlation with truth")
    ax.legend(loc="lower right")
    return fig


# --------------------------------------------------------------------------------------------
# 03 / 04 · converted models, per-layer differences


def model_sizes(size_rows: Sequence[Mapping[str, Any]]) -> Figure:
    """One column: file size per net for each (format, precision) in ``size_rows`` (keys ``net``, ``format``
    (``onnx``/``coreml``), ``precision`` (``fp32``/``fp16``), ``bytes``); FP16 bars hatched."""
    formats = [(f, p) for f in ("onnx", "coreml") for p in ("fp32", "fp16")
               if any(r["format"] == f and r["precision"] == p for r in size_rows)]
    fig, ax = _figure(COLUMN_WIDTH, 2.3)
    width = 0.8 / len(formats)
    for k, (fmt, precision) in enumerate(formats):
        color = COLORS[fmt]
        sizes = [next(r["bytes"] for r in size_rows if (r["net"], r["format"], r["precision"]) == (net, fmt, precision))
                 for net in NETS]
        x = np.arange(len(NETS)) + (k - (len(formats) - 1) / 2) * width
        hatched = precision == "fp16"
        ax.bar(x, np.array(sizes) / 1024, width, color="white" if hatched else color, edgecolor=color, linewidth=0.8,
               hatch="////" if hatched else None, label=f"{'ONNX' if fmt == 'onnx' else 'Core ML'} {precision.upper()}")
    ax.set_xticks(range(len(NETS)), [n.upper() for n in NETS])
    ax.set_yscale("log")
    ax.set_ylabel("model size (KiB)")
    ax.legend(ncol=2, loc="upper left")
    ax.set_ylim(top=ax.get_ylim()[1] * 6)
    return fig


_FIELD_STYLES = ({"marker": "o", "ls": "-", "ms": 3, "lw": 1.0}, {"marker": "s", "ls": ":", "ms": 2.5, "lw": 0.9})


def layer_differences(layer_rows: Sequence[Mapping[str, Any]], series: str, ylabel: str,
                      fields: Sequence[str] = ("max_abs",), colors: Mapping[str, str] | None = None,
                      floor: float = 1e-9) -> Figure:
    """Text width: one panel per net, one line per value of ``layer_rows[i][series]`` and field in ``fields``
    (the first solid with dots, the second dotted with squares), layers in order, the ``output`` row left out.

    ``colors`` maps a series to its colour (default :func:`color_for`); values below ``floor`` are drawn at it.
    """
    names = list(dict.fromkeys(r[series] for r in layer_rows))
    fig, axes = _figure(TEXT_WIDTH, 2.5, ncols=3, sharey=True, gridspec_kw={"width_ratios": [8, 13, 16]})
    for ax, net in zip(axes, NETS, strict=True):
        layers = [r["layer"] for r in layer_rows
                  if r["net"] == net and r[series] == names[0] and r["layer"] != "output"]
        for name in names:
            rows = {r["layer"]: r for r in layer_rows if r["net"] == net and r[series] == name}
            color = (colors or {}).get(name) or color_for(name)
            for field, style in zip(fields, _FIELD_STYLES, strict=False):
                label = name if len(fields) == 1 else f"{name} {field.removesuffix('_abs')}"
                ax.plot(range(len(layers)), [max(rows[k][field], floor) for k in layers], color=color, label=label,
                        **style)
        layer_axis(ax, layers, net)
    axes[0].set_ylabel(ylabel)
    handles = axes[0].get_legend_handles_labels()[0]
    _top_legend(fig, handles, ncol=min(len(handles), 4))
    return fig


def fp16_iou(summary_rows: Sequence[Mapping[str, Any]], ious: Mapping[str, np.ndarray],
             floor: float = 1e-5) -> Figure:
    """One column: per variant, 1 − IoU with FP32 of every FP32 face, sorted; ``floor`` stands for identical boxes.

    ``summary_rows`` have ``variant``, ``policy`` (``fp32``/``fp16``/``fp16-all``), ``faces_a`` (FP32 faces) and
    ``matched``; ``ious`` maps a variant to its matched faces' IoUs. The FP32 control is grey and dotted, RNet/ONet
    FP16 solid, all-FP16 dashed; the colour is the runtime's.
    """
    fig, ax = _figure(COLUMN_WIDTH, 3.2)
    for r in summary_rows:
        v = r["variant"]
        n_lost = r["faces_a"] - r["matched"]
        label = v + (" (FP32 control)" if r["policy"] == "fp32" else "") + (f", {n_lost} lost" if n_lost else "")
        gap = np.maximum(1 - np.sort(ious[v])[::-1], floor)  # largest 1 - IoU last
        share = (np.arange(len(gap)) + 1) / max(len(gap), 1)
        ax.step(share, gap, where="post", ls={"fp32": ":", "fp16": "-", "fp16-all": "--"}[r["policy"]],
                lw=1.4 if r["policy"] == "fp16-all" else 1.0,
                color="0.45" if r["policy"] == "fp32" else COLORS[v.split("-")[0]], label=label)
    ax.axhline(0.01, color="0.5", lw=0.5)
    ax.text(0.02, 0.012, "IoU 0.99", fontsize=6, color="0.3")
    ax.text(0.98, floor * 1.25, "identical boxes", fontsize=6, color="0.3", ha="right")
    ax.set_yscale("log")
    ax.set_ylim(floor * 0.7, 0.2)
    ax.set_xlabel("share of FP32 faces (sorted by 1 − IoU)")
    ax.set_ylabel("1 − IoU with FP32")
    fig.legend(loc="outside lower center", ncol=2, handlelength=2.2, columnspacing=1.0)
    return fig


# --------------------------------------------------------------------------------------------
# 05 · end to end against C++


def faces_region(boxes: np.ndarray, width: int, height: int, aspect: float, pad: float = 1.0) -> tuple[float, ...]:
    """A crop ``(x, y, w, h)`` px of a ``width`` x ``height`` image around ``boxes`` (x, y, w, h px): their union,
    widened by ``pad`` times the median box side on every side, grown to ``aspect`` (w / h) and kept inside
    the image as far as it fits. No boxes: the whole image."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    b = b[np.isfinite(b).all(axis=1)]
    if not len(b):
        return 0.0, 0.0, float(width), float(height)
    margin = pad * float(np.median(b[:, 2:]))
    x0, y0 = b[:, 0].min() - margin, b[:, 1].min() - margin
    x1, y1 = (b[:, 0] + b[:, 2]).max() + margin, (b[:, 1] + b[:, 3]).max() + margin
    w, h = x1 - x0, y1 - y0
    w, h = max(w, h * aspect), max(h, w / aspect)
    w, h = min(w, width), min(h, height)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    x = float(np.clip(cx - w / 2, 0, width - w))
    y = float(np.clip(cy - h / 2, 0, height - h))
    return x, y, float(w), float(h)


def face_overlays(panels: Sequence[tuple[np.ndarray, FacesLike, FacesLike, str]], python_label: str,
                  ncols: int = 3) -> Figure:
    """Text width: a grid of frames cropped around their faces, C++ and Python faces drawn by
    :func:`~mtcnn_lab.lab.figures.overlay`, one legend above.

    ``panels`` holds ``(image BGR, Python faces, C++ faces, title)``; ``python_label`` is the Python legend text.
    """
    nrows = max(1, -(-len(panels) // ncols))
    panel_w = TEXT_WIDTH / ncols
    fig, axes = _figure(TEXT_WIDTH, nrows * panel_w * 0.75 + 0.5, nrows=nrows, ncols=ncols, squeeze=False)
    for ax, (image, python, cpp, title) in zip(axes.flat, panels, strict=False):
        boxes = np.concatenate([as_arrays(python)[0], as_arrays(cpp)[0]])
        crop = faces_region(boxes, image.shape[1], image.shape[0], aspect=4 / 3)
        overlay(image, python, cpp, ax=ax, legend=False, linewidth=1.2, landmark_size=14, crop=crop)
        ax.set_title(title, fontsize=6)
    for ax in axes.flat[len(panels):]:
        ax.set_axis_off()
    _top_legend(fig, legend_handles(labels={"python": python_label}), ncol=2)
    return fig


def iou_per_backend(faces: Sequence[Mapping[str, Any]], backends: Sequence[str], floor: float = 1e-9) -> Figure:
    """Text width: per backend, sorted 1 − IoU with C++ of every matched face and the largest of |dx|, |dy|,
    |dw|, |dh| (px), on log axes; values below ``floor`` (IoU exactly 1) are drawn at it.

    ``faces`` are :func:`mtcnn_lab.lab.parity.per_face_rows` rows. FP16 policies share the FP16 colour: the
    numpy one is dashed.
    """
    from mtcnn_lab.lab.parity import DELTA_FIELDS

    fig, (ax1, ax2) = _figure(TEXT_WIDTH, 2.6, ncols=2)
    for name in backends:
        matched = [f for f in faces if f["backend"] == name and f["matched"]]
        share = (np.arange(len(matched)) + 0.5) / max(len(matched), 1)
        gap = np.sort([max(f["one_minus_iou"], floor) for f in matched])
        px = np.sort([max(max(abs(f[k]) for k in DELTA_FIELDS), floor) for f in matched])
        style = {"color": color_for(name), "ls": "--" if name.startswith("numpy") and "fp16" in name else "-",
                 "label": name, "drawstyle": "steps-mid", "lw": 1.3}
        ax1.plot(share, gap, **style)
        ax2.plot(share, px, **style)
    ax1.axhline(0.01, color="0.5", lw=0.6, ls=":")
    ax1.text(0.02, 0.012, "IoU = 0.99", fontsize=6, color="0.3")
    for ax, label in ((ax1, "1 − IoU with C++"), (ax2, "max |dx|, |dy|, |dw|, |dh| (px)")):
        ax.set_yscale("log")
        ax.set_xlim(0, 1)
        ax.set_xlabel("share of matched faces (sorted)")
        ax.set_ylabel(label)
        ax.grid(True, which="major")
    _top_legend(fig, ax1.get_legend_handles_labels()[0], ncol=len(backends))
    return fig


# --------------------------------------------------------------------------------------------
# 06 · latency


def _family(backend: str) -> str:
    """The legend entry of a backend's colour."""
    if backend.startswith("C++"):
        return "C++ OpenFace"
    if "fp16" in backend:
        return "FP16 nets (any runtime)"
    return backend.split("-")[0]


def _threads_label(threads: int | None) -> str:
    return "default threads" if threads is None else f"{threads} thread{'s' if threads > 1 else ''}"


def latency(runs: Sequence[Mapping[str, Any]], cpp_frame_ms: Sequence[float] | None = None) -> Figure:
    """Text width. Left: per backend, the median per-frame latency with a bar from p5 to p95 over the frames,
    one marker per thread count. Right: each cascade stage's share of the time, at the first thread count.

    ``runs`` are :func:`mtcnn_lab.lab.bench.timing.benchmark_detector` results with ``backend``, ``threads``,
    ``median_ms``, ``p5_ms``, ``p95_ms`` and ``stage_share``; ``cpp_frame_ms`` are C++ OpenFace's per-frame times.
    """
    from matplotlib import colormaps
    from matplotlib.lines import Line2D

    rows = [dict(r) for r in runs]
    if cpp_frame_ms is not None and len(cpp_frame_ms):
        p5, median, p95 = np.percentile(np.asarray(cpp_frame_ms, np.float64), [5, 50, 95])
        rows.append({"backend": "C++ OpenFace", "threads": 1, "p5_ms": p5, "median_ms": median, "p95_ms": p95})
    backends = list(dict.fromkeys(r["backend"] for r in rows))
    threads = sorted({r["threads"] for r in rows}, key=lambda t: (t is None, t or 0))  # None: the runtime's default
    markers = {t: "os^Dv<>PX"[k % 9] for k, t in enumerate(threads)}
    offsets = dict(zip(threads, np.linspace(-0.18, 0.18, len(threads)) if len(threads) > 1 else [0.0], strict=True))
    fig, (ax1, ax2) = _figure(TEXT_WIDTH, 1.0 + 0.18 * len(backends), ncols=2, sharey=True,
                              gridspec_kw={"width_ratios": [1.2, 1]})
    for r in rows:
        y = backends.index(r["backend"]) + offsets[r["threads"]]
        color = color_for("cpp" if r["backend"].startswith("C++") else r["backend"])
        ax1.plot([r["p5_ms"], r["p95_ms"]], [y, y], color=color, lw=1.2, solid_capstyle="butt")
        ax1.plot(r["median_ms"], y, ls="", marker=markers[r["threads"]], ms=4, color=color,
                 markerfacecolor=color if r["threads"] == threads[0] else "white")
    ax1.set_yticks(range(len(backends)), backends)
    ax1.set_ylim(len(backends) - 0.5, -0.5)
    ax1.set_xlim(left=0)
    ax1.set_xlabel("time per frame (ms): median, bar p5–p95")
    ax1.grid(axis="x")
    shares_at = next(t for t in threads if any(r["threads"] == t for r in runs))  # the fewest threads timed here
    first = [r for r in runs if r["threads"] == shares_at]
    stage_colors = colormaps["cividis"](np.linspace(0.0, 0.85, len(STAGES)))
    left = np.zeros(len(first))
    rows_y = [backends.index(r["backend"]) for r in first]
    for stage, stage_color in zip(STAGES, stage_colors, strict=True):
        share = np.array([r["stage_share"].get(stage, 0.0) for r in first])
        ax2.barh(rows_y, share, left=left, height=0.7, color=stage_color, label=stage.replace("_", " + "))
        left += share
    for name in backends:
        if name not in {r["backend"] for r in first}:
            ax2.text(0.01, backends.index(name), "no stage times", fontsize=6, color="0.3", va="center")
    ax2.set_xlim(0, 1)
    ax2.set_xlabel(f"share of time per stage ({_threads_label(shares_at)})")
    ax2.tick_params(axis="y", left=False)
    ax2.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, handlelength=1.0, columnspacing=0.8)
    families = list(dict.fromkeys(_family(b) for b in backends))
    color_of = {_family(b): color_for("cpp" if b.startswith("C++") else b) for b in backends}
    handles = [Line2D([], [], color=color_of[f], lw=1.2, label=f) for f in families]
    handles += [Line2D([], [], ls="", marker=markers[t], ms=4, color="0.2",
                       markerfacecolor="0.2" if t == threads[0] else "white", label=_threads_label(t))
                for t in threads]
    ax1.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, handlelength=1.2,
               columnspacing=0.8)
    return fig


# --------------------------------------------------------------------------------------------
# 07 · decode profiles


def decode_profiles(runs: Mapping[str, ProfileRun], baseline: str) -> Figure:
    """Text width: the first frame as each decoder returns it, one panel per orientation (profiles that
    return the picture equally turned share a panel, the baseline's first), cropped in every panel to the
    region around the ``baseline`` profile's faces, with the boxes each panel's first profile found. The
    baseline must return the upright picture (``turn`` 0; notebook 07 uses ``upright``): ValueError otherwise.
    """
    from mtcnn_lab.lab.decoders import to_upright_boxes

    if runs[baseline].turn != 0:
        raise ValueError(f"the baseline profile {baseline!r} returns the picture turned {runs[baseline].turn} "
                         "degrees; pass the profile that returns it upright (e.g. 'upright')")

    groups: dict[int, list[str]] = {}
    for name in sorted(runs, key=lambda n: n != baseline):
        groups.setdefault(runs[name].turn, []).append(name)
    base = runs[baseline]
    up_h, up_w = base.first_frame.shape[:2]
    region = np.array([faces_region(base.detections[0].boxes, up_w, up_h, aspect=1.0, pad=1.0)])
    fig, axes = _figure(TEXT_WIDTH, TEXT_WIDTH / len(groups) + 0.55, ncols=len(groups), squeeze=False)
    for ax, (turn, names) in zip(axes.flat, groups.items(), strict=True):
        run = runs[names[0]]
        crop = to_upright_boxes(region, (360 - turn) % 360, up_w, up_h)[0]  # the upright region in this frame
        overlay(run.first_frame, faces_python=run.detections[0], ax=ax, legend=False, linewidth=1.6,
                landmark_size=10, crop=crop)
        counts = textwrap.fill(", ".join(f"{n}: {len(runs[n].detections[0])}" for n in names), 44)
        ax.set_title(f"{f'turned {turn}°' if turn else 'upright'}; faces found\n{counts}", fontsize=6)
    return fig


__all__ = ["NET_COLORS", "STAGES", "weight_histograms", "prelu_slopes", "mistake_signatures",
           "model_sizes", "layer_differences", "fp16_iou", "faces_region", "face_overlays", "iou_per_backend",
           "latency", "decode_profiles"]
