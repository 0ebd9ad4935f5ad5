"""Notebook frame viewer: step through frames, compare a backend's faces with C++ OpenFace's.

Needs ipywidgets (``pip install 'mtcnn-lab[notebooks]'``); ``import mtcnn_lab`` does not. Frames are
BGR uint8 images; boxes are ``x, y, w, h`` pixels of the full-size frame (scaled here for display).
Numbering: the slider and the readout count the viewer's frames from 1 ("view 2/30"); a video frame's label is
``VIDEO#INDEX`` with the 0-based decode index, and the readout adds its number in OpenFace's CSV files
(``frame``, from 1: INDEX + 1). Faces are numbered from 0, as OpenFace's ``face_id`` (the order the detector
returns them). Methods take 0-based indices.

The rendering and the readout are pure methods (:meth:`FrameViewer.render`,
:meth:`FrameViewer.readout`, :meth:`FrameViewer.stats`); the widgets only call them. Displayed as a cell's
output, the viewer also carries a PNG of its first view, which notebook readers without widgets (GitHub,
nbviewer, an executed notebook opened without a kernel) show instead. DOM classes for browser tests:
``mtcnn-viewer`` (the box), ``mtcnn-viewer-slider``, ``mtcnn-viewer-backend``, ``mtcnn-viewer-zoom``,
``mtcnn-viewer-show-cpp``, ``mtcnn-viewer-show-python``, ``mtcnn-viewer-image``, ``mtcnn-viewer-readout``.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Mapping, Sequence
from typing import Any

import cv2
import numpy as np

from mtcnn_lab.detections import Detections
from mtcnn_lab.io.paths import PathLike
from mtcnn_lab.lab.agreement import match_faces
from mtcnn_lab.lab.figures import COLORS, LABELS, as_arrays, draw_faces, to_bgr
from mtcnn_lab.lab.result_files import read_face_file, read_frames

try:
    import ipywidgets as ipw
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError("mtcnn_lab.lab.widgets needs ipywidgets: pip install 'mtcnn-lab[notebooks]'") from error

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray]
Faces = Detections | Sequence[Mapping[str, Any]]
Zoom = tuple[str, int] | None
"""``None`` (the whole frame) or ``("python", i)`` / ``("cpp", j)``: the face to zoom on (0-based)."""

ZOOM_CONTEXT = 1.0
"""A zoomed view shows the face box with this many box sizes of context around it in all (1.0: twice the box)."""
WHOLE_FRAME = "whole frame"
"""The zoom menu's first entry."""
MAX_ZOOM = 8.0
"""The largest magnification of a zoomed view (pixels are shown as blocks: nearest-neighbour)."""


def _png(image: np.ndarray) -> bytes:
    """A BGR uint8 image encoded as PNG."""
    ok, data = cv2.imencode(".png", image)
    if not ok:  # pragma: no cover - OpenCV failure
        raise RuntimeError("PNG encoding failed")
    return data.tobytes()


def _swatch(side: str) -> str:
    """A toggle's label: a square in the side's box colour, then its name (HTML)."""
    return f'<span style="color:{COLORS[side]};font-weight:bold">&#9632;</span> {html.escape(LABELS[side])}'


class FrameViewer:
    """Interactive viewer of detections per frame: slider, backend and zoom menus, C++/Python toggles, image, readout.

    ``frames``: ``(label, BGR image)`` per frame. ``results``: backend name -> one
    :class:`~mtcnn_lab.detections.Detections` (or reference-style ``faces`` list) per frame. ``cpp``: the C++
    reference ``faces`` list per frame (``None`` for a frame it does not cover), or ``None``. Views are at most
    ``max_width`` x ``max_height`` pixels (frames are downscaled to fit, boxes with them; a zoomed face is
    magnified up to :data:`MAX_ZOOM`). Faces are paired with :func:`~mtcnn_lab.lab.agreement.match_faces`
    (IoU >= ``min_iou``). Display it with ``display(viewer)`` or ``viewer`` as a cell's last line.
    """

    def __init__(self, frames: Sequence[tuple[str, np.ndarray]], results: Mapping[str, Sequence[Faces]],
                 cpp: Sequence[Sequence[Mapping[str, Any]] | None] | None = None, max_width: int = 640,
                 max_height: int = 640, min_iou: float = 0.3, thickness: int = 2) -> None:
        self.frames = [(str(label), image) for label, image in frames]
        if not self.frames:
            raise ValueError("FrameViewer needs at least one frame")
        if not results:
            raise ValueError("FrameViewer needs the results of at least one backend")
        for name, per_frame in results.items():
            if len(per_frame) != len(self.frames):
                raise ValueError(f"backend {name!r} has {len(per_frame)} results for {len(self.frames)} frames")
        if cpp is not None and len(cpp) != len(self.frames):
            raise ValueError(f"cpp has {len(cpp)} entries for {len(self.frames)} frames")
        if max_width < 1 or max_height < 1:
            raise ValueError("max_width and max_height must be positive")
        self.results = {str(name): [as_arrays(faces) for faces in per_frame] for name, per_frame in results.items()}
        self.cpp = None if cpp is None else [None if faces is None else as_arrays(faces) for faces in cpp]
        self.max_width, self.max_height = int(max_width), int(max_height)
        self.min_iou = float(min_iou)
        self.thickness = int(thickness)
        self._build()

    @classmethod
    def from_files(cls, frames: PathLike | Sequence[PathLike], ours: PathLike, cpp: PathLike | None = None,
                   decode: str | None = None, **options: Any) -> FrameViewer:
        """A viewer of your own run: ``frames`` a video, a folder of images or a list of image paths; ``ours``
        the JSON or CSV that ``mtcnn-lab detect`` wrote for them; ``cpp`` a C++ reference JSON (its schema:
        ``results`` with ``image``, ``frame``, ``faces``) or None; ``decode`` the video's decode profile (default:
        the one the JSON records; a CSV needs it). Only the frames ``ours`` has results for are shown;
        ``options`` go to the constructor. InputError in one line for a missing or foreign file."""
        run = read_face_file(ours)
        shown = read_frames(frames, run, decode)
        reference = None if cpp is None else read_face_file(cpp)
        return cls([(f.label, f.image) for f in shown], {run.name: [run.lookup(*f.key) for f in shown]},
                   cpp=None if reference is None else [reference.lookup(*f.key) for f in shown], **options)

    # ------------------------------------------------------------------ pure part

    @property
    def backends(self) -> list[str]:
        """Backend names in the order given."""
        return list(self.results)

    def _backend(self, backend: str | None) -> str:
        if backend is None:
            return self.backends[0]
        if backend not in self.results:
            raise KeyError(f"unknown backend {backend!r}; have {self.backends}")
        return backend

    def python_arrays(self, index: int, backend: str | None = None) -> Arrays:
        """``(boxes, confidences, landmarks)`` of a backend on frame ``index`` (0-based), in full-frame pixels."""
        return self.results[self._backend(backend)][index]

    def cpp_arrays(self, index: int) -> Arrays | None:
        """``(boxes, confidences, landmarks)`` of C++ OpenFace on a frame, or ``None`` without a reference."""
        return None if self.cpp is None else self.cpp[index]

    def region(self, index: int, backend: str | None = None, zoom: Zoom = None) -> tuple[int, int, int, int]:
        """The part of frame ``index`` a view shows, ``x0, y0, x1, y1`` pixels (exclusive ends): the whole
        frame, or the zoomed face's box with :data:`ZOOM_CONTEXT` around it, clipped to the frame."""
        height, width = self.frames[index][1].shape[:2]
        if zoom is None:
            return 0, 0, width, height
        side, face = zoom
        faces = self.python_arrays(index, backend) if side == "python" else self.cpp_arrays(index)
        if faces is None or not 0 <= face < len(faces[0]):
            raise KeyError(f"frame {index + 1} has no {side} face {face}")
        x, y, w, h = (float(v) for v in faces[0][face])
        side = max(1, min(int(np.ceil(max(w, h) * (1 + ZOOM_CONTEXT))), width, height))
        # a square around the face's centre, moved inside the frame (a face at an edge or partly outside it)
        x0 = int(np.clip(round(x + w / 2 - side / 2), 0, width - side))
        y0 = int(np.clip(round(y + h / 2 - side / 2), 0, height - side))
        return x0, y0, x0 + side, y0 + side

    def scale(self, index: int, backend: str | None = None, zoom: Zoom = None) -> float:
        """Shown px per frame px of a view: the whole frame downscaled to fit ``max_width`` x ``max_height`` (never
        enlarged), or a zoomed face enlarged to fit, up to :data:`MAX_ZOOM`."""
        x0, y0, x1, y1 = self.region(index, backend, zoom)
        fit = min(self.max_width / (x1 - x0), self.max_height / (y1 - y0))
        return min(fit, MAX_ZOOM) if zoom is not None else min(1.0, fit)

    def view(self, index: int, backend: str | None = None, zoom: Zoom = None) -> tuple[np.ndarray, float,
                                                                                         tuple[int, int]]:
        """The pixels a view shows (BGR uint8, without faces), its scale (shown px per frame px) and the
        frame pixel at its top left: the whole frame downscaled to fit (INTER_AREA), or a face magnified up to
        :data:`MAX_ZOOM` (nearest neighbour, so the frame's pixels stay visible)."""
        x0, y0, x1, y1 = self.region(index, backend, zoom)
        image = self.frames[index][1][y0:y1, x0:x1]
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        scale = self.scale(index, backend, zoom)
        if scale != 1.0:
            size = (max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale)))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_NEAREST)
        return np.ascontiguousarray(image), scale, (x0, y0)

    def render(self, index: int, backend: str | None = None, show_cpp: bool = True, show_python: bool = True,
               zoom: Zoom = None) -> np.ndarray:
        """The display image (BGR uint8) of frame ``index`` (0-based): C++ faces wide in the ``cpp`` colour with
        ring landmarks, the backend's faces thin on top in the ``python`` colour with dot landmarks."""
        out, scale, (x0, y0) = self.view(index, backend, zoom)
        out = out.copy()
        origin = np.array([x0, y0, 0, 0], np.float64)
        thick = self.thickness

        def placed(arrays: Arrays) -> tuple[np.ndarray, np.ndarray]:
            return (arrays[0] - origin) * scale, (arrays[2] - origin[:2]) * scale

        cpp = self.cpp_arrays(index)
        if show_cpp and cpp is not None:
            boxes, landmarks = placed(cpp)
            draw_faces(out, boxes, landmarks, to_bgr("cpp"), thick + 2, radius=thick + 2, filled=False, copy=False)
        if show_python:
            boxes, landmarks = placed(self.python_arrays(index, backend))
            draw_faces(out, boxes, landmarks, to_bgr("python"), max(1, thick - 1), radius=thick, copy=False)
        return out

    def render_png(self, index: int, backend: str | None = None, show_cpp: bool = True,
                   show_python: bool = True, zoom: Zoom = None) -> bytes:
        """:meth:`render` encoded as PNG."""
        return _png(self.render(index, backend, show_cpp, show_python, zoom))

    def stats(self, index: int, backend: str | None = None) -> dict[str, Any]:
        """Face counts and the matched pairs of frame ``index`` (0-based) as a dict.

        ``pairs`` are ``(python index, cpp index, iou)`` from :func:`~mtcnn_lab.lab.agreement.match_faces`;
        ``mean_iou`` is over the pairs (``None`` without pairs or without a C++ reference).
        """
        backend = self._backend(backend)
        boxes, confidences, _ = self.python_arrays(index, backend)
        label, image = self.frames[index]
        info: dict[str, Any] = {
            "index": index, "label": label, "backend": backend, "size": (image.shape[1], image.shape[0]),
            "scale": self.scale(index, backend), "python_faces": len(boxes), "cpp_faces": None,
            "pairs": [], "mean_iou": None, "unmatched_python": [], "unmatched_cpp": [],
            "python_confidences": [float(c) for c in confidences], "cpp_confidences": [],
        }
        cpp = self.cpp_arrays(index)
        if cpp is None:
            return info
        pairs = sorted(match_faces(boxes, cpp[0], self.min_iou))
        matched_py, matched_cpp = {i for i, _, _ in pairs}, {j for _, j, _ in pairs}
        info.update(
            cpp_faces=len(cpp[0]), pairs=pairs,
            mean_iou=float(np.mean([v for *_, v in pairs])) if pairs else None,
            unmatched_python=[i for i in range(len(boxes)) if i not in matched_py],
            unmatched_cpp=[j for j in range(len(cpp[0])) if j not in matched_cpp],
            cpp_confidences=[float(c) for c in cpp[1]],
        )
        return info

    def readout(self, index: int, backend: str | None = None, zoom: Zoom = None) -> str:
        """Plain-text summary of frame ``index`` (0-based; shown from 1): label, face counts, IoU of each matched
        pair (faces from 0), mean IoU, and the zoom when there is one."""
        s = self.stats(index, backend)
        width, height = s["size"]
        shown = "" if s["scale"] == 1.0 else f", shown at {s['scale']:.3g}x"
        video_frame = re.fullmatch(r".+#(\d+)", s["label"])
        openface = f" = OpenFace frame {int(video_frame.group(1)) + 1}" if video_frame else ""
        lines = [f"view {index + 1}/{len(self.frames)}: {s['label']}{openface}", f"{width}x{height} px{shown}"]
        if zoom is not None:
            lines.append(f"zoom: {'Python' if zoom[0] == 'python' else 'C++'} #{zoom[1]} at "
                         f"{self.scale(index, backend, zoom):.3g}x")
        cpp_count = "no reference" if s["cpp_faces"] is None else f"{s['cpp_faces']} faces"
        lines.append(f"Python [{s['backend']}]: {s['python_faces']} faces | C++: {cpp_count}")
        if s["cpp_faces"] is None:
            return "\n".join(lines)
        lines.append(f"matched {len(s['pairs'])} (IoU >= {self.min_iou:g})")
        for i, j, value in s["pairs"]:
            conf_py, conf_cpp = s["python_confidences"][i], s["cpp_confidences"][j]
            lines.append(f"  Python #{i} <-> C++ #{j}: IoU {value:.6f}")
            lines.append(f"    confidence {conf_py:.4f} / {conf_cpp:.4f}")
        mean = "n/a" if s["mean_iou"] is None else f"{s['mean_iou']:.6f}"
        lines.append(f"mean IoU {mean}")
        if s["unmatched_python"] or s["unmatched_cpp"]:
            lines.append(f"unmatched: Python {s['unmatched_python']}, C++ {s['unmatched_cpp']}")
        return "\n".join(lines)

    def zoom_options(self, index: int, backend: str | None = None) -> dict[str, Zoom]:
        """The zoom menu of a frame, label -> zoom: the whole frame, then each Python face, then each C++ face."""
        cpp = self.cpp_arrays(index)
        return ({WHOLE_FRAME: None}
                | {f"Python #{i}": ("python", i) for i in range(len(self.python_arrays(index, backend)[0]))}
                | {f"C++ #{j}": ("cpp", j) for j in range(0 if cpp is None else len(cpp[0]))})

    # ------------------------------------------------------------------ widgets

    @property
    def widget(self) -> ipw.VBox:
        """The viewer's ipywidgets box; its parts are ``slider`` (views from 1), ``backend_dropdown``,
        ``zoom_dropdown``, ``show_cpp``, ``show_python``, ``image`` and ``info``."""
        return self._widget

    @property
    def zoom(self) -> Zoom:
        """The zoom the menu shows (None: the whole frame)."""
        return self._zooms[self.zoom_dropdown.value]

    @property
    def index(self) -> int:
        """The 0-based index of the frame the slider shows."""
        return self.slider.value - 1

    def _build(self) -> None:
        self.slider = ipw.IntSlider(value=1, min=1, max=len(self.frames), step=1, description="view",
                                    continuous_update=False, layout=ipw.Layout(width="320px"))
        self.backend_dropdown = ipw.Dropdown(options=self.backends, value=self.backends[0], description="backend",
                                             layout=ipw.Layout(width="240px"))
        self._zooms = self.zoom_options(0)
        self.zoom_dropdown = ipw.Dropdown(options=list(self._zooms), value=WHOLE_FRAME, description="zoom",
                                          layout=ipw.Layout(width="200px"))
        self.show_cpp = ipw.Checkbox(value=self.cpp is not None, description=_swatch("cpp"), indent=False,
                                     description_allow_html=True, disabled=self.cpp is None,
                                     layout=ipw.Layout(width="auto"))
        self.show_python = ipw.Checkbox(value=True, description=_swatch("python"), indent=False,
                                        description_allow_html=True, layout=ipw.Layout(width="auto"))
        self.image = ipw.Image(format="png", layout=ipw.Layout(flex="0 0 auto", height="auto", max_width="100%"))
        self.info = ipw.HTML(layout=ipw.Layout(flex="1 1 300px", min_width="300px", margin="0 0 0 12px"))
        for widget, css in [(self.slider, "slider"), (self.backend_dropdown, "backend"), (self.zoom_dropdown, "zoom"),
                            (self.show_cpp, "show-cpp"), (self.show_python, "show-python"),
                            (self.image, "image"), (self.info, "readout")]:
            widget.add_class(f"mtcnn-viewer-{css}")
        self._updating = False
        for widget in (self.slider, self.backend_dropdown, self.zoom_dropdown, self.show_cpp, self.show_python):
            widget.observe(self._on_change, names="value")
        wrap = ipw.Layout(flex_flow="row wrap", align_items="flex-start")
        controls = ipw.HBox([self.slider, self.backend_dropdown, self.zoom_dropdown], layout=wrap)
        toggles = ipw.HBox([self.show_cpp, self.show_python], layout=wrap)
        body = ipw.HBox([self.image, self.info], layout=wrap)
        self._widget = ipw.VBox([controls, toggles, body], layout=ipw.Layout(max_width="100%"))
        self._widget.add_class("mtcnn-viewer")
        self.update()

    def _on_change(self, change: dict) -> None:
        if self._updating:
            return
        if change["owner"] is not self.zoom_dropdown and change["owner"] is not self.show_cpp \
                and change["owner"] is not self.show_python:
            self._updating = True  # a new frame or backend: its own faces to zoom on, the whole frame first
            try:
                self._zooms = self.zoom_options(self.index, self.backend_dropdown.value)
                self.zoom_dropdown.options = list(self._zooms)
                self.zoom_dropdown.value = WHOLE_FRAME
            finally:
                self._updating = False
        self.update()

    def update(self) -> None:
        """Redraw the image and the readout from the widgets' current values."""
        index, backend, zoom = self.index, self.backend_dropdown.value, self.zoom
        shown = self.render(index, backend, self.show_cpp.value, self.show_python.value, zoom)
        self.image.value = _png(shown)
        self.image.layout.width = f"{shown.shape[1]}px"  # its own size, not stretched
        self.info.value = (f"<pre style='line-height:1.3;margin:0;white-space:pre;overflow-x:auto'>"
                           f"{html.escape(self.readout(index, backend, zoom))}</pre>")

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        """The widget, plus a PNG of the current view and its readout as text for readers without widgets."""
        bundle = self.widget._repr_mimebundle_(**kwargs)
        data = dict(bundle[0] if isinstance(bundle, tuple) else bundle or {})
        data["image/png"] = base64.b64encode(bytes(self.image.value)).decode("ascii")
        data["text/plain"] = self.readout(self.index, self.backend_dropdown.value, self.zoom)
        return data
