"""Every numbered notebook executes headless in quick mode (as ``./run_all.sh --quick`` does).

Also checks that each ``.ipynb`` and its jupytext ``.py`` pair hold the same cells, that each has a
papermill ``parameters`` cell, and that each ends in a written conclusion.
"""

from __future__ import annotations

import json
from pathlib import Path

import jupytext
import nbformat
import pytest

from mtcnn_lab.lab.workbench import notebook_paths, run_notebook

from .conftest import require_shared

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
PATHS = notebook_paths(ROOT)
MANIFEST = str(ROOT / "data" / "manifest.json")


def test_there_are_seven_numbered_notebooks():
    assert [p.stem[:2] for p in PATHS] == ["01", "02", "03", "04", "05", "06", "07"]


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_notebook_is_paired_and_parameterised(path):
    script = NOTEBOOKS / f"{path.stem}.py"
    assert script.exists(), f"{script} missing: pair it with `jupytext --set-formats ipynb,py:percent`"
    ipynb, py = jupytext.read(path), jupytext.read(script)
    assert [c.source for c in ipynb.cells] == [c.source for c in py.cells], f"run `jupytext --sync {script}`"
    assert any("parameters" in c.metadata.get("tags", []) for c in ipynb.cells)
    assert not any(c.get("outputs") for c in ipynb.cells if c.cell_type == "code"), "commit notebooks without outputs"


def _rows(results: Path, table: str) -> list[dict]:
    return json.loads((results / "tables" / f"{table}.json").read_text())["rows"]


def _claims_05(results: Path) -> None:
    """Every FP32 backend agrees with C++ on every frame, boxes within the README's 1e-3 px."""
    fp32 = [r for r in _rows(results, "05_summary") if not r["backend"].endswith("fp16")]
    assert {r["backend"] for r in fp32} >= {"numpy", "torch", "onnx", "openvino"}
    for row in fp32:
        assert row["images_agree"] == row["images"] and row["matched"] == row["faces_cpp"], row
        assert row["centre_max_abs"] <= 1e-3 and row["size_max_abs"] <= 1e-3, row


def _claims_04(results: Path) -> None:
    """The default FP16 policies (PNet FP32) keep every face; FP32 through ONNX is the same as the reference."""
    for row in _rows(results, "04_fp16_end_to_end"):
        if row["policy"] in ("fp32", "fp16"):
            assert row["images_same_count"] == row["images"] and row["iou_mean"] >= 0.999, row


def _claims_07(results: Path) -> None:
    """The profiles that give the upright picture with the tags honoured find exactly upright's faces;
    opencv-4.6 turns the -90 degree clip upside down."""
    rows = {r["profile"]: r for r in _rows(results, "07_decode_profiles")}
    for name in ("opencv-4.13", "opencv-python", "upright"):
        assert rows[name]["iou_mean"] == 1.0 and rows[name]["max_px"] == 0.0, rows[name]
    assert rows["opencv-4.6"]["picture"] == "turned 180 cw"


NOTEBOOK_CLAIMS = {"05_end_to_end_iou": _claims_05, "04_fp16_validation": _claims_04,
                   "07_phone_video_decoding": _claims_07}
"""Checks of what a notebook's conclusion says, on the tables its quick run wrote."""


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_notebook_runs_in_quick_mode(path, tmp_path):
    require_shared("reference", "cpp_mtcnn_dev.json")
    run = run_notebook(path, {"quick": True, "results_dir": str(tmp_path), "manifest": MANIFEST}, results=tmp_path)
    executed = nbformat.read(run.output, as_version=4)
    last = executed.cells[-1]
    texts = [o.get("data", {}).get("text/markdown", "") for o in last.get("outputs", [])]
    assert any(t.startswith("**Conclusion.**") for t in texts), f"{path.stem} ends without a conclusion"
    assert run.written, f"{path.stem} wrote no table or figure"
    assert any(p.suffix == ".json" for p in run.written)
    if path.stem in NOTEBOOK_CLAIMS:
        NOTEBOOK_CLAIMS[path.stem](tmp_path)
    if path.stem == "05_end_to_end_iou":
        _viewer_has_a_picture(executed)


def _viewer_has_a_picture(executed) -> None:
    """The executed notebook's viewer output carries, beside the widget, a PNG of the first frame with both
    sides' boxes drawn: what GitHub and a notebook opened without a kernel show."""
    import base64

    import cv2
    import numpy as np

    from mtcnn_lab.lab.figures import to_bgr

    outputs = [o for c in executed.cells if c.cell_type == "code" for o in c.get("outputs", [])
               if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert len(outputs) == 1, "notebook 05 shows no viewer widget"
    data = outputs[0]["data"]
    assert "image/png" in data, "the viewer output has no picture for readers without widgets"
    image = cv2.imdecode(np.frombuffer(base64.b64decode(data["image/png"]), np.uint8), cv2.IMREAD_COLOR)
    assert image is not None and image.shape[1] >= 320
    for side in ("cpp", "python"):
        near = np.abs(image.astype(int) - np.array(to_bgr(side))).max(axis=2) <= 30
        assert near.sum() > 50, f"no {side} box in the viewer's picture"
    assert data["text/plain"].startswith("view 1/")


def test_a_folder_without_notebooks_is_named_with_the_fix(tmp_path):
    from mtcnn_lab.lab.workbench import NotebookFailed

    with pytest.raises(NotebookFailed, match="no notebook in .* --root DIR"):
        notebook_paths(tmp_path)


def test_a_failing_notebook_is_named_with_its_cell(tmp_path):
    from mtcnn_lab.lab.workbench import NotebookFailed

    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "language": "python",
                                                           "display_name": "Python 3"}})
    params = nbformat.v4.new_code_cell("quick = False\nresults_dir = '.'", metadata={"tags": ["parameters"]})
    nb.cells = [params, nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell("raise ValueError('bad frame')")]
    path = tmp_path / "99_broken.ipynb"
    nbformat.write(nb, path)
    with pytest.raises(NotebookFailed) as info:
        run_notebook(path, {"quick": True, "results_dir": str(tmp_path)}, results=tmp_path)
    message = str(info.value)
    assert "99_broken.ipynb" in message and "ValueError: bad frame" in message and "cell" in message
    assert "\n" not in message


def test_a_parameter_no_notebook_takes_is_a_one_line_error(tmp_path):
    from mtcnn_lab.lab.workbench import NotebookFailed, run_notebooks

    root = Path(__file__).resolve().parents[1]
    with pytest.raises(NotebookFailed, match=r"^manfest: not a parameter of these notebooks \(they take .*quick"):
        next(run_notebooks(root, only=["01"], parameters={"manfest": "x.json"}, results=tmp_path))


def test_the_kernel_s_own_messages_go_to_its_log_not_the_terminal(tmp_path, capfd):
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "language": "python",
                                                           "display_name": "Python 3"}})
    params = nbformat.v4.new_code_cell("quick = False\nresults_dir = '.'", metadata={"tags": ["parameters"]})
    nb.cells = [params, nbformat.v4.new_code_cell("import os\nos.write(2, b'chatter from the kernel process\\n')")]
    path = tmp_path / "98_chatty.ipynb"
    nbformat.write(nb, path)
    run = run_notebook(path, {"quick": True, "results_dir": str(tmp_path)}, results=tmp_path)
    err = capfd.readouterr().err
    assert "chatter from the kernel process" not in err and "without encryption" not in err
    log = run.output.with_suffix(".kernel.log").read_text()
    assert "chatter from the kernel process" in log
