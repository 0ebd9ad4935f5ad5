"""Notebook 05's widget viewer works in a real browser (JupyterLab + headless Chromium).

Starts ``jupyter lab`` headless on a quick-mode copy of notebook 05, opens it in Debian's Chromium
through chromedriver and selenium, runs all cells in that browser session, moves the frame slider
with the keyboard and checks that the viewer's image and readout change. The screenshots before and
after are kept as ``results/figures/05_widget_browser_{before,after}.png``. The work is done by
``scripts/widget_screenshot.py``; skipped when Chromium, chromedriver, jupyterlab or selenium is
missing (CI installs them: ``apt-get install -y chromium chromium-driver`` in ``.ci/run``).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "widget_screenshot.py"
FIGURES = REPO / "results" / "figures"


def load_script():
    spec = importlib.util.spec_from_file_location("widget_screenshot", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_viewer_slider_changes_the_image_in_headless_chromium():
    browser = load_script()
    reason = browser.missing_requirements()
    if reason:
        pytest.skip(f"browser check not possible here: {reason}")
    before_path, after_path = FIGURES / browser.BEFORE, FIGURES / browser.AFTER
    for path in (before_path, after_path):
        path.unlink(missing_ok=True)

    result = browser.capture(FIGURES, quick=True, timeout=100)

    assert result["src_before"] and result["src_after"] != result["src_before"]
    assert "frame 1/" in result["readout_before"] and "frame 2/" in result["readout_after"], result
    assert "Python [" in result["readout_after"] and "C++:" in result["readout_after"]
    assert result["before"] == before_path and result["after"] == after_path
    before, after = before_path.read_bytes(), after_path.read_bytes()
    assert before.startswith(b"\x89PNG") and after.startswith(b"\x89PNG")
    assert before != after
    assert result["changed_pixels"] > 0.2, result["changed_pixels"]  # a different frame, not a moved handle
