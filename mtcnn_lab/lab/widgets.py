"""Notebook frame viewer: step through frames, compare a backend's faces with C++ OpenFace's.

Needs ipywidgets (``pip install 'mtcnn-lab[notebooks]'``); ``import mtcnn_lab`` does not. Frames are
BGR uint8 images; boxes are ``x, y, w, h`` pixels of the full-size frame (scaled here for display).

The rendering and the readout are pure methods (:meth:`FrameViewer.render`,
:meth:`FrameViewer.readout`, :meth:`FrameViewer.stats`); the widgets only call them. DOM classes
for browser tests: ``mtcnn-viewer`` (the box), ``mtcnn-viewer-slider``, ``mtcnn-viewer-backend``,
``mtcnn-viewer-show-cpp``, ``mtcnn-viewer-show-python``, ``mtcnn-viewer-image``, ``mtcnn-viewer-readout``.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

import cv2
import numpy as np

from mtcnn_lab.detections import Detections
from mtcnn_lab.lab.agreement import match_faces
from mtcnn_lab.lab.figures import COLORS, LABELS, draw_faces, faces_to_arrays, to_bgr

try:
    import ipywidgets as ipw
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError("mtcnn_lab.lab.widgets needs ipywidgets: pip install 'mtcnn-lab[notebooks]'") from error

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray]


class FrameViewer:
    """Interactive viewer of detections per frame: slider, backend dropdown, C++/Python toggles, image, readout.

    ``frames``: ``(label, BGR image)`` per frame. ``results``: backend name -> one
    :class:`~mtcnn_lab.detections.Detections` per frame. ``cpp``: the C++ reference ``faces`` list per
    frame, or ``None``. Frames wider than ``max_width`` are shown downscaled (boxes scaled with them).
    Faces are paired with :func:`~mtcnn_lab.lab.agreement.match_faces` (IoU >= ``min_iou``). Display it
    with ``display(viewer.widget)`` or just ``viewer`` as a cell's last line.
    """

    def __init__(self, frames: Sequence[tuple[str, np.ndarray]], results: Mapping[str, Sequence[Detections]],
                 cpp: Sequence[Sequence[Mapping[str, Any]]] | None = None, max_width: int = 960,
                 min_iou: float = 0.3, thickness: int = 2) -> None:
        self.frames = [(str(label), image) for label, image in frames]
        if not self.frames:
            raise ValueError("FrameViewer needs at least one frame")
        if not results:
            raise ValueError("FrameViewer needs the results of at least one backend")
        self.results = {str(name): list(per_frame) for name, per_frame in results.items()}
        for name, per_frame in self.results.items():
            if len(per_frame) != len(self.frames):
                raise ValueError(f"backend {name!r} has {len(per_frame)} results for {len(self.frames)} frames")
        if cpp is not None and len(cpp) != len(self.frames):
            raise ValueError(f"cpp has {len(cpp)} entries for {len(self.frames)} frames")
        if max_width < 1:
            raise ValueError("max_width must be positive")
        self.cpp = None if cpp is None else [faces_to_arrays(list(faces)) for faces in cpp]
        self.max_width = int(max_width)
        self.min_iou = float(min_iou)
        self.thickness = int(thickness)
        self._display_cache: dict[int, tuple[np.ndarray, float]] = {}
        self._build()

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

    def display_frame(self, index: int) -> tuple[np.ndarray, float]:
        """The frame as shown (downscaled to ``max_width`` if wider, INTER_AREA) and its scale factor."""
        if index not in self._display_cache:
            image = self.frames[index][1]
            if image.ndim == 2:
                image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
            width = image.shape[1]
            scale = min(1.0, self.max_width / width)
            if scale < 1.0:
                size = (max(1, round(width * scale)), max(1, round(image.shape[0] * scale)))
                image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
            self._display_cache[index] = (image, scale)
        return self._display_cache[index]

    def python_arrays(self, index: int, backend: str | None = None) -> Arrays:
        """``(boxes, confidences, landmarks)`` of a backend on a frame, in full-frame pixels."""
        det = self.results[self._backend(backend)][index]
        return (np.asarray(det.boxes, np.float32).reshape(-1, 4), np.asarray(det.confidences, np.float32),
                np.asarray(det.landmarks, np.float64).reshape(-1, 5, 2))

    def cpp_arrays(self, index: int) -> Arrays | None:
        """``(boxes, confidences, landmarks)`` of C++ OpenFace on a frame, or ``None`` without a reference."""
        return None if self.cpp is None else self.cpp[index]

    def render(self, index: int, backend: str | None = None, show_cpp: bool = True,
               show_python: bool = True) -> np.ndarray:
        """The display image (BGR uint8): C++ faces wide in the ``cpp`` colour with ring landmarks, the
        backend's faces thin on top in the ``python`` colour with dot landmarks."""
        image, scale = self.display_frame(index)
        out = image.copy()
        thick = self.thickness
        cpp = self.cpp_arrays(index)
        if show_cpp and cpp is not None:
            draw_faces(out, cpp[0] * scale, cpp[2] * scale, to_bgr("cpp"), thick + 2, radius=thick + 2,
                       filled=False, copy=False)
        if show_python:
            boxes, _, landmarks = self.python_arrays(index, backend)
            draw_faces(out, boxes * scale, landmarks * scale, to_bgr("python"), max(1, thick - 1),
                       radius=thick, copy=False)
        return out

    def render_png(self, index: int, backend: str | None = None, show_cpp: bool = True,
                   show_python: bool = True) -> bytes:
        """:meth:`render` encoded as PNG."""
        ok, data = cv2.imencode(".png", self.render(index, backend, show_cpp, show_python))
        if not ok:  # pragma: no cover - OpenCV failure
            raise RuntimeError("PNG encoding failed")
        return data.tobytes()

    def stats(self, index: int, backend: str | None = None) -> dict[str, Any]:
        """Face counts and the matched pairs of one frame as a dict.

        ``pairs`` are ``(python index, cpp index, iou)`` from :func:`~mtcnn_lab.lab.agreement.match_faces`;
        ``mean_iou`` is over the pairs (``None`` without pairs or without a C++ reference).
        """
        backend = self._backend(backend)
        boxes, confidences, _ = self.python_arrays(index, backend)
        label, image = self.frames[index]
        info: dict[str, Any] = {
            "index": index, "label": label, "backend": backend, "size": (image.shape[1], image.shape[0]),
            "scale": self.display_frame(index)[1], "python_faces": len(boxes), "cpp_faces": None,
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

    def readout(self, index: int, backend: str | None = None) -> str:
        """Plain-text summary of a frame: label, face counts, IoU of each matched pair, mean IoU."""
        s = self.stats(index, backend)
        width, height = s["size"]
        shown = "" if s["scale"] == 1.0 else f", shown at {s['scale']:.3g}x"
        lines = [f"frame {index + 1}/{len(self.frames)}: {s['label']} ({width}x{height}{shown})"]
        cpp_count = "no reference" if s["cpp_faces"] is None else f"{s['cpp_faces']} faces"
        lines.append(f"Python [{s['backend']}]: {s['python_faces']} faces | C++: {cpp_count}")
        if s["cpp_faces"] is None:
            return "\n".join(lines)
        lines.append(f"matched {len(s['pairs'])} (IoU >= {self.min_iou:g})")
        for i, j, value in s["pairs"]:
            conf_py, conf_cpp = s["python_confidences"][i], s["cpp_confidences"][j]
            lines.append(f"  python #{i} <-> C++ #{j}: IoU {value:.6f}  conf {conf_py:.4f} / {conf_cpp:.4f}")
        mean = "n/a" if s["mean_iou"] is None else f"{s['mean_iou']:.6f}"
        lines.append(f"mean IoU {mean}")
        if s["unmatched_python"] or s["unmatched_cpp"]:
            lines.append(f"unmatched: python {s['unmatched_python']}, C++ {s['unmatched_cpp']}")
        return "\n".join(lines)

    # ------------------------------------------------------------------ widgets

    @property
    def widget(self) -> ipw.VBox:
        """The viewer's ipywidgets box; its parts are ``slider``, ``backend_dropdown``, ``show_cpp``,
        ``show_python``, ``image`` and ``info``."""
        return self._widget

    def _build(self) -> None:
        self.slider = ipw.IntSlider(value=0, min=0, max=len(self.frames) - 1, step=1, description="frame",
                                    continuous_update=False, layout=ipw.Layout(width="60%"))
        self.backend_dropdown = ipw.Dropdown(options=self.backends, value=self.backends[0], description="backend")
        self.show_cpp = ipw.Checkbox(value=self.cpp is not None, description=LABELS["cpp"], indent=False,
                                     disabled=self.cpp is None)
        self.show_python = ipw.Checkbox(value=True, description=LABELS["python"], indent=False)
        self.image = ipw.Image(format="png", layout=ipw.Layout(max_width="100%"))
        self.info = ipw.HTML()
        for widget, css in [(self.slider, "slider"), (self.backend_dropdown, "backend"),
                            (self.show_cpp, "show-cpp"), (self.show_python, "show-python"),
                            (self.image, "image"), (self.info, "readout")]:
            widget.add_class(f"mtcnn-viewer-{css}")
        for widget in (self.slider, self.backend_dropdown, self.show_cpp, self.show_python):
            widget.observe(self._on_change, names="value")
        legend = ipw.HTML(" ".join(
            f'<span style="color:{COLORS[k]};font-weight:bold">&#9632;</span> {html.escape(LABELS[k])}'
            for k in ("cpp", "python")))
        controls = ipw.HBox([self.slider, self.backend_dropdown])
        toggles = ipw.HBox([self.show_cpp, self.show_python, legend])
        self._widget = ipw.VBox([controls, toggles, self.image, self.info])
        self._widget.add_class("mtcnn-viewer")
        self.update()

    def _on_change(self, _change: dict) -> None:
        self.update()

    def update(self) -> None:
        """Redraw the image and the readout from the widgets' current values."""
        index, backend = self.slider.value, self.backend_dropdown.value
        self.image.value = self.render_png(index, backend, self.show_cpp.value, self.show_python.value)
        self.info.value = f"<pre style='line-height:1.3'>{html.escape(self.readout(index, backend))}</pre>"

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)
