"""Paper figures: one colour scheme, one matplotlib style, reproducible files, face overlays.

Conventions: images are BGR uint8 (OpenCV); boxes are ``x, y, w, h`` in pixels, used as 0-based
rectangles as OpenFace does (a box covers the pixels ``x .. x+w-1``); landmarks are pixel ``x, y``
with integer values at pixel centres (OpenCV's convention). Faces come either as
:class:`~mtcnn_lab.detections.Detections` or as the C++ reference JSON's ``faces`` list.

matplotlib is imported only by the functions that need it, so :mod:`mtcnn_lab.lab.widgets` (OpenCV
drawing) works without it.
"""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from mtcnn_lab.detections import Detections
from mtcnn_lab.files import write_atomic

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

# Okabe & Ito (2008), "Color Universal Design": distinguishable with every common colour-vision deficiency.
OKABE_ITO = {
    "black": "#000000", "orange": "#E69F00", "sky_blue": "#56B4E9", "bluish_green": "#009E73",
    "yellow": "#F0E442", "blue": "#0072B2", "vermillion": "#D55E00", "reddish_purple": "#CC79A7",
    "grey": "#999999",
}

COLORS: dict[str, str] = {
    "cpp": OKABE_ITO["orange"],          # C++ OpenFace (the reference)
    "python": OKABE_ITO["sky_blue"],     # our port
    "numpy": OKABE_ITO["blue"],
    "torch": OKABE_ITO["vermillion"],
    "onnx": OKABE_ITO["bluish_green"],
    "coreml": OKABE_ITO["reddish_purple"],
    "openvino": "#882255",               # Paul Tol's "wine": Okabe-Ito's eighth colour, yellow, vanishes on white
    "pymtcnn": "#777777",                # darker than Okabe-Ito's grey, for contrast on white
    "fp16": OKABE_ITO["black"],
}
"""Hex colours by role: ``cpp`` and ``python`` for reference vs port, then one per backend family. Every backend
colour has a contrast of at least 3:1 on white (WCAG's minimum for graphics); ``cpp`` and ``python`` are drawn
over images, as boxes, markers and bars."""

LABELS: dict[str, str] = {"cpp": "C++ OpenFace", "python": "Python (mtcnn-lab)"}
"""Legend text for the two sides of a comparison."""

COLUMN_WIDTH = 3.5
"""Width in inches of one column of a two-column paper (IEEE 3.5 in; ACM's 3.33 in scales it by 0.95)."""
TEXT_WIDTH = 7.0
"""Width in inches of a figure spanning both columns."""

PAPER_RC: dict[str, Any] = {
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans"],  # ships with matplotlib, so it exists on a bare Linux box
    "mathtext.fontset": "dejavusans",
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "legend.title_fontsize": 7,
    "figure.titlesize": 9,
    "figure.figsize": (COLUMN_WIDTH, 2.4),
    "figure.dpi": 100,
    "axes.linewidth": 0.6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.prop_cycle": "cycler('color', [{}])".format(", ".join(
        repr(COLORS[k]) for k in ("numpy", "torch", "onnx", "coreml", "pymtcnn", "fp16", "cpp", "python", "openvino"))),
    "grid.linewidth": 0.4,
    "grid.alpha": 0.4,
    "lines.linewidth": 1.2,
    "lines.markersize": 4,
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "xtick.major.size": 3,
    "ytick.major.size": 3,
    "legend.frameon": False,
    "pdf.fonttype": 42,  # embed TrueType (Type 42), never Type 3: editable text, accepted by publishers
    "ps.fonttype": 42,
    "pdf.compression": 6,
    "svg.fonttype": "path",
    "svg.hashsalt": "mtcnn-lab",  # fixed ids in SVG output
    "savefig.dpi": 300,
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.02,
    "savefig.transparent": False,
    "savefig.facecolor": "white",
    "text.usetex": False,
}
"""rcParams of :func:`paper_style`; the colour cycle is the backend colours of :data:`COLORS`."""

PDF_METADATA = {"Creator": "mtcnn-lab", "Producer": "mtcnn-lab", "CreationDate": None, "ModDate": None}
"""PDF info dictionary of :func:`save_figure`: no dates and no matplotlib version, so files are reproducible."""
PNG_METADATA = {"Software": None}
"""PNG text chunks of :func:`save_figure`: matplotlib's default ``Software`` (its version) is dropped."""


def color_for(name: str) -> str:
    """The hex colour of a role or backend name (``"torch-cpu-fp16"`` -> fp16, ``"onnx-cpu"`` -> onnx).

    FP16 runs share one colour whatever the runtime; unknown names get grey.
    """
    key = name.lower()
    if key in COLORS:
        return COLORS[key]
    if "fp16" in key:
        return COLORS["fp16"]
    if key in ("c++", "openface") or key.startswith("cpp"):
        return COLORS["cpp"]
    family = re.split(r"[-_ .]", key, maxsplit=1)[0]
    return COLORS.get(family, OKABE_ITO["grey"])


def layer_axis(ax: Axes, layers: Sequence[str], net: str) -> None:
    """Style an axis that plots one value per layer of ``net``: layer keys (``l03_conv``) as
    ``03 conv`` ticks, log y scale, major y grid, the net's name as title."""
    ax.set_xticks(range(len(layers)), [f"{k[1:3]} {k[4:]}" for k in layers], rotation=90, fontsize=6)
    ax.set_title(net.upper())
    ax.set_yscale("log")
    ax.grid(axis="y", which="major")


def to_bgr(name_or_hex: str) -> tuple[int, int, int]:
    """An OpenCV ``(b, g, r)`` tuple for a role/backend name or a ``#rrggbb`` colour."""
    hex_color = name_or_hex if name_or_hex.startswith("#") else color_for(name_or_hex)
    r, g, b = (int(hex_color[i:i + 2], 16) for i in (1, 3, 5))
    return b, g, r


@contextlib.contextmanager
def paper_style() -> Iterator[dict[str, Any]]:
    """Context manager applying the paper rcParams (``with paper_style(): fig, ax = plt.subplots()``).

    Create *and* save the figure inside the block: fonts and sizes are read when text is drawn.
    """
    import matplotlib

    with matplotlib.rc_context(PAPER_RC):
        yield dict(PAPER_RC)


def render_figure(fig: Figure, fmt: str, dpi: float | None = None, metadata: Mapping[str, Any] | None = None,
                  **savefig_kwargs: Any) -> bytes:
    """``fig`` rendered to bytes in format ``png`` or ``pdf`` with reproducible metadata."""
    base = {"pdf": PDF_METADATA, "png": PNG_METADATA}.get(fmt)
    if base is None:
        raise ValueError(f"format must be 'png' or 'pdf', not {fmt!r}")
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, dpi=dpi, metadata={**base, **(metadata or {})}, **savefig_kwargs)
    return buffer.getvalue()


def save_figure(fig: Figure, name: str, outdir: str | Path, formats: Sequence[str] = ("png", "pdf"),
                dpi: float | None = None, metadata: Mapping[str, Any] | None = None,
                **savefig_kwargs: Any) -> dict[str, Path]:
    """Write ``outdir/name.png`` and ``outdir/name.pdf`` atomically, replacing older files.

    Output is byte-for-byte reproducible: the PDF has no dates and a fixed Creator/Producer, the PNG no
    ``Software`` chunk (see :data:`PDF_METADATA`, :data:`PNG_METADATA`). ``metadata`` adds entries to
    both (e.g. ``{"Title": ...}``; PNG keys must be text). ``dpi`` defaults to ``savefig.dpi``
    (300 under :func:`paper_style`). Returns ``{format: path}``.
    """
    if not name or Path(name).name != name or name in (".", ".."):
        raise ValueError(f"figure name must be a plain file stem, not {name!r}")
    outdir = Path(outdir)
    paths = {}
    for fmt in formats:
        data = render_figure(fig, fmt, dpi=dpi, metadata=metadata, **savefig_kwargs)
        paths[fmt] = write_atomic(outdir / f"{name}.{fmt}", data, overwrite=True)
    return paths


# --------------------------------------------------------------------------------------------
# faces as arrays


FacesLike = Detections | Sequence[Mapping[str, Any]] | Mapping[str, Any]
"""``Detections``, a C++ ``faces`` list, or a whole C++ result entry (its ``faces`` are used)."""


def faces_to_arrays(faces: Sequence[Mapping[str, Any]] | Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray,
                                                                                       np.ndarray]:
    """C++ reference faces as ``(boxes float32 (N, 4) x,y,w,h, confidences float32 (N,), landmarks (N, 5, 2))``.

    Accepts the ``faces`` list of one result or the result dict itself. Missing confidences or
    landmarks become NaN (drawing skips NaN points).
    """
    if isinstance(faces, Mapping):
        faces = faces["faces"]
    n = len(faces)
    boxes = np.zeros((n, 4), np.float32)
    confidences = np.full(n, np.nan, np.float32)
    landmarks = np.full((n, 5, 2), np.nan, np.float64)
    for i, face in enumerate(faces):
        boxes[i] = np.asarray(face["bbox"], np.float64).reshape(4)
        if face.get("confidence") is not None:
            confidences[i] = face["confidence"]
        if face.get("landmarks") is not None:
            landmarks[i] = np.asarray(face["landmarks"], np.float64).reshape(5, 2)
    return boxes, confidences, landmarks


def as_arrays(faces: FacesLike | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`faces_to_arrays` for any :data:`FacesLike` (``None`` -> no faces)."""
    if faces is None:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 5, 2))
    if isinstance(faces, Detections):
        return (np.asarray(faces.boxes, np.float32).reshape(-1, 4), np.asarray(faces.confidences, np.float32),
                np.asarray(faces.landmarks, np.float64).reshape(-1, 5, 2))
    return faces_to_arrays(faces)


# --------------------------------------------------------------------------------------------
# drawing


_SHIFT = 4  # OpenCV fixed-point bits: sub-pixel positions for scaled boxes
_ONE = 1 << _SHIFT


def draw_faces(image_bgr: np.ndarray, boxes: np.ndarray, landmarks: np.ndarray | None = None,
               color_bgr: tuple[int, int, int] | None = None, thickness: int = 2, radius: int | None = None,
               filled: bool = True, copy: bool = True) -> np.ndarray:
    """Draw boxes (x, y, w, h pixels) and landmark dots on a BGR image with OpenCV; returns the image.

    A box's outline runs through the centres of its border pixels ``x`` and ``x+w-1`` (likewise y),
    positioned with sub-pixel precision. ``color_bgr`` defaults to the ``python`` colour, ``radius`` to
    ``thickness + 1``; ``filled=False`` draws rings. ``copy=False`` draws into ``image_bgr`` itself
    (a grayscale image is always converted to a new BGR image).
    """
    out = image_bgr.copy() if copy else image_bgr
    if out.ndim == 2:
        out = cv2.cvtColor(out, cv2.COLOR_GRAY2BGR)
    color = to_bgr("python") if color_bgr is None else tuple(int(c) for c in color_bgr)
    thickness = max(1, int(thickness))
    radius = thickness + 1 if radius is None else max(1, int(radius))
    for x, y, w, h in np.asarray(boxes, np.float64).reshape(-1, 4):
        if not np.all(np.isfinite([x, y, w, h])):
            continue
        p1 = (round(x * _ONE), round(y * _ONE))
        p2 = (round((x + max(w, 1) - 1) * _ONE), round((y + max(h, 1) - 1) * _ONE))
        cv2.rectangle(out, p1, p2, color, thickness, cv2.LINE_AA, _SHIFT)
    if landmarks is not None:
        for px, py in np.asarray(landmarks, np.float64).reshape(-1, 2):
            if np.isfinite(px) and np.isfinite(py):
                cv2.circle(out, (round(px * _ONE), round(py * _ONE)), radius * _ONE, color,
                           -1 if filled else max(1, thickness // 2), cv2.LINE_AA, _SHIFT)
    return out


_BOX_STYLE = {"cpp": {"linewidth": 2.2, "linestyle": "-"}, "python": {"linewidth": 1.0, "linestyle": (0, (3, 2))}}


def legend_handles(keys: Sequence[str] = ("cpp", "python"), labels: Mapping[str, str] | None = None,
                   linewidth: float = 1.0) -> list:
    """Legend entries matching :func:`overlay`'s styles, e.g. for one ``fig.legend(handles=...)`` per figure."""
    from matplotlib.lines import Line2D

    names = {**LABELS, **(labels or {})}
    handles = []
    for key in keys:
        style = _BOX_STYLE[key]
        handles.append(Line2D([], [], color=COLORS[key], label=names[key], marker="o", markersize=3.5,
                              markerfacecolor="none" if key == "cpp" else COLORS[key],
                              linewidth=style["linewidth"] * linewidth, linestyle=style["linestyle"]))
    return handles


def overlay(image_bgr: np.ndarray, faces_python: FacesLike | None = None, faces_cpp: FacesLike | None = None,
            ax: Axes | None = None, *, linewidth: float = 1.0, landmark_size: float = 12.0, legend: bool = True,
            crop: Sequence[float] | None = None, labels: Mapping[str, str] | None = None) -> Axes:
    """Show a BGR image with C++ and Python faces for a paper figure; returns the axes.

    C++ boxes are drawn wide and solid, Python boxes thin and dashed on top, so identical boxes stay
    visible as both; C++ landmarks are rings, Python landmarks dots. ``legend`` puts a legend below
    the image (for panels side by side prefer ``legend=False`` and one ``fig.legend(handles=``
    :func:`legend_handles` ``())``). ``crop`` ``(x, y, w, h)`` zooms to a region in pixels.
    ``labels`` overrides the legend text of ``"cpp"`` / ``"python"``.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    if ax is None:
        _, ax = plt.subplots()
    height, width = image_bgr.shape[:2]
    rgb = image_bgr if image_bgr.ndim == 2 else image_bgr[..., ::-1]
    # imshow's default extent puts pixel centres at integers, matching the landmark convention
    ax.imshow(rgb, cmap="gray" if image_bgr.ndim == 2 else None, interpolation="nearest")
    point_styles = {
        "cpp": {"s": 2.0 * landmark_size, "facecolors": "none", "edgecolors": COLORS["cpp"], "linewidths": linewidth},
        "python": {"s": 0.6 * landmark_size, "facecolors": COLORS["python"], "edgecolors": "none"},
    }
    shown = []
    for key, faces in (("cpp", faces_cpp), ("python", faces_python)):
        if faces is None:
            continue
        shown.append(key)
        style = _BOX_STYLE[key]
        boxes, _, landmarks = as_arrays(faces)
        for x, y, w, h in boxes.astype(np.float64):
            # the rectangle covers pixels x .. x+w-1, whose outer edges are x-0.5 .. x+w-0.5
            ax.add_patch(Rectangle((x - 0.5, y - 0.5), w, h, fill=False, edgecolor=COLORS[key],
                                   linewidth=style["linewidth"] * linewidth, linestyle=style["linestyle"]))
        points = landmarks.reshape(-1, 2)
        points = points[np.isfinite(points).all(axis=1)]
        if len(points):
            ax.scatter(points[:, 0], points[:, 1], marker="o", zorder=3, **point_styles[key])
    if crop is not None:
        x, y, w, h = (float(v) for v in crop)
        ax.set_xlim(x - 0.5, x + w - 0.5)
        ax.set_ylim(y + h - 0.5, y - 0.5)
    else:
        ax.set_xlim(-0.5, width - 0.5)
        ax.set_ylim(height - 0.5, -0.5)
    ax.set_axis_off()
    if legend and shown:
        ax.legend(handles=legend_handles(shown, labels, linewidth), loc="upper center", bbox_to_anchor=(0.5, 0.0),
                  frameon=False, handlelength=2.5, borderaxespad=0.2)
    return ax
