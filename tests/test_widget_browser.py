"""The workbench in a real browser: every notebook opened in JupyterLab and run in headless Chromium.

Starts ``jupyter lab`` headless on a project laid out as a clone (quick-mode copies of the numbered notebooks in
``notebooks/``, nothing else passed: each finds its manifest, results and shared folder itself), opens each
notebook in Debian's Chromium through chromedriver and selenium and runs all its cells there; a failing cell or an
error shown in any output fails the test. In notebook 05 the viewer must answer the frame slider, the backend
menu and the zoom, show its image at its own width (not stretched) with the readout beside it, and draw each
frame's C++ and Python boxes where the reference puts them. The screenshots before and after the slider are
kept as ``results/figures/05_widget_browser_{before,after}.png``. The work is done by
``scripts/browser_check.py``; skipped when Chromium, chromedriver, jupyterlab or selenium is missing (a failure
in CI, which installs them: ``apt-get install -y chromium chromium-driver`` in ``.ci/run``).
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from mtcnn_lab.lab.figures import to_bgr

from .conftest import DEV_REFERENCE, require_shared

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "browser_check.py"
FIGURES = REPO / "results" / "figures"


def load_script():
    spec = importlib.util.spec_from_file_location("browser_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _edge_points(box, scale):
    """Middles of the four edges of a box (x, y, w, h px of the frame) in the shown image's pixels."""
    x, y, w, h = (v * scale for v in box)
    return [(x + w / 2, y), (x + w / 2, y + h - 1), (x, y + h / 2), (x + w - 1, y + h / 2)]


def _colour_near(image, point, colour, other, radius=4, tolerance=80) -> bool:
    """Whether a pixel within ``radius`` of ``point`` has ``colour`` (BGR): within ``tolerance`` of it
    (the thin line is antialiased into its neighbours) and nearer to it than to the ``other`` box colour."""
    px, py = round(point[0]), round(point[1])
    patch = image[max(0, py - radius):py + radius + 1, max(0, px - radius):px + radius + 1].astype(int)
    near = np.abs(patch - np.array(colour)).max(axis=-1)
    nearer = near < np.abs(patch - np.array(other)).max(axis=-1)
    return bool(patch.size) and bool(((near <= tolerance) & nearer).any())


def _shown(readout: str, pixels: bytes, reference: dict):
    """The frame's label and C++ boxes (from the reference, not from the viewer), the image as the browser
    showed it, and its display scale."""
    label = re.match(r"view \d+/\d+: (?P<name>\S+)(?: = OpenFace frame (?P<openface>\d+))?\n(?P<w>\d+)x\d+ px",
                     readout)
    assert label, readout
    image = cv2.imdecode(np.frombuffer(pixels, np.uint8), cv2.IMREAD_COLOR)
    scale = image.shape[1] / int(label.group("w"))
    name = label.group("name")
    if "#" in name:  # a video frame, "VIDEO#INDEX": the reference names its PNG frames/<stem>_f<index>.png
        video, index = name.rsplit("#", 1)
        assert int(label.group("openface")) == int(index) + 1  # OpenFace numbers frames from 1
        name = f"frames/{Path(video).stem}_f{index}.png"
    entry = next(e for e in reference["results"] if e["image"] == name)
    return name, [f["bbox"] for f in entry["faces"]], image, scale


def _check_overlay(image, boxes, scale) -> None:
    """Every C++ box is drawn in the C++ colour with the Python box on it, on all four edges."""
    assert boxes, "the frame has no face to check"
    for box in boxes:
        for point in _edge_points(box, scale):
            assert _colour_near(image, point, to_bgr("cpp"), to_bgr("python")), ("no C++ box edge at", point)
            assert _colour_near(image, point, to_bgr("python"), to_bgr("cpp")), ("no Python box edge at", point)


def test_every_notebook_runs_in_jupyterlab_and_the_viewer_answers_in_headless_chromium():
    require_shared("reference", "cpp_mtcnn_dev.json")
    browser = load_script()
    reason = browser.missing_requirements()
    if reason:
        pytest.skip(f"browser check not possible here: {reason}")
    before_path, after_path = FIGURES / browser.BEFORE, FIGURES / browser.AFTER
    for path in (before_path, after_path):
        path.unlink(missing_ok=True)

    checked = browser.check_notebooks(FIGURES, quick=True, timeout=1500)

    expected = sorted(p.name for p in (REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert len(expected) == 7 and list(checked["notebooks"]) == expected
    result = checked["viewer"]
    assert result["src_before"] and result["src_after"] != result["src_before"]
    assert "view 1/" in result["readout_before"] and "view 2/" in result["readout_after"], result
    assert "Python [" in result["readout_after"] and "C++:" in result["readout_after"]
    assert f"Python [{result['backend']}]" in result["readout_backend"]
    shown_before = next(line for line in result["readout_after"].splitlines() if line.startswith("Python ["))
    assert result["backend"] not in shown_before  # another backend than before
    assert f"zoom: {result['zoom']}" in result["readout_zoom"]
    layout = result["layout"]  # the frame at its own width, the readout beside it inside the cell
    assert abs(layout["shown"] - layout["natural"]) <= 1, layout
    assert layout["readout_left"] >= layout["image_right"] and layout["readout_top"] < layout["image_bottom"], layout
    assert layout["readout_right"] <= layout["cell_right"] + 1, layout
    assert result["before"] == before_path and result["after"] == after_path
    before, after = before_path.read_bytes(), after_path.read_bytes()
    assert before.startswith(b"\x89PNG") and after.startswith(b"\x89PNG")
    assert before != after
    assert result["changed_pixels"] > 0.2, result["changed_pixels"]  # a different frame, not a moved handle

    # the overlay itself: the boxes the reference gives each frame, drawn where they belong in what the
    # browser shows, in the C++ and the Python colours; and they move with the frame
    reference = json.loads(DEV_REFERENCE.read_text())
    label_1, boxes_1, image_1, scale_1 = _shown(result["readout_before"], result["pixels_before"], reference)
    label_2, boxes_2, image_2, scale_2 = _shown(result["readout_after"], result["pixels_after"], reference)
    assert label_1 != label_2
    _check_overlay(image_1, boxes_1, scale_1)
    _check_overlay(image_2, boxes_2, scale_2)
    moved = [p for box in boxes_1 for p in _edge_points(box, scale_1)
             if all(np.hypot(p[0] - q[0], p[1] - q[1]) > 12 for b in boxes_2 for q in _edge_points(b, scale_2))]
    assert moved, "the two frames' boxes are in the same places: pick frames whose faces differ"
    assert not all(_colour_near(image_2, p, to_bgr("cpp"), to_bgr("python"), radius=1, tolerance=20) for p in moved)
