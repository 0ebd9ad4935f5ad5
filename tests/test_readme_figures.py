"""The README's accuracy figures are those of the committed tables, and are computed right from tables
written here by hand."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from mtcnn_lab.lab.readme_figures import (
    BEGIN,
    END,
    FiguresUnavailable,
    _up,
    accuracy_figures,
    accuracy_section,
    update_readme,
)

REPO = Path(__file__).resolve().parents[1]


def test_the_committed_readme_says_what_the_committed_tables_say():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = text.split(BEGIN)[1].split(END)[0].strip("\n")
    assert block == accuracy_section(accuracy_figures(REPO / "results" / "tables")), \
        "README's accuracy figures differ from results/tables: run ./run_all.sh, or update_readme"


@pytest.mark.parametrize(("value", "text"), [
    (1.37e-4, "1.4e-4"), (1.4e-4, "1.4e-4"), (1.41e-4, "1.5e-4"), (9.96e-5, "1.0e-4"), (6.0e-8, "6.0e-8"),
    (1.71661376953125e-05, "1.8e-5"), (0.0, "0.0e0"),
])
def test_bounds_are_rounded_up_to_two_digits(value, text):
    assert _up(value) == text
    assert float(text) >= value


def _write(folder: Path, name: str, rows: list[dict]) -> None:
    with (folder / f"{name}.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _face(backend, dx, dy=0.0, dw=0.0, dh=0.0, conf=(0.9, 0.9), matched="True"):
    return {"backend": backend, "matched": matched, "dx": dx, "dy": dy, "dw": dw, "dh": dh,
            "cpp_confidence": conf[0], "python_confidence": conf[1]}


@pytest.fixture
def tables(tmp_path):
    faces = [_face("numpy", 1e-5, conf=(0.5, 0.5000002)), _face("torch", -3e-4), _face("onnx", 0, dh=2e-4),
             _face("openvino", 0, dw=-1e-4), _face("onnx-fp16", 0.4, conf=(0.5, 0.6)),  # FP16: not counted
             _face("numpy", 7.0, matched="False")]  # unmatched: not counted
    _write(tmp_path, "05_per_face", faces)
    _write(tmp_path, "05_summary", [{"backend": b, "images": 4, "images_same_count": 4, "faces_cpp": 5}
                                    for b in ("numpy", "torch", "onnx", "openvino")])
    _write(tmp_path, "02_reference_vs_cpp_layers", [{"image": "a", "max_abs": 3e-6}, {"image": "b", "max_abs": 1.2e-5},
                                                    {"image": "a", "max_abs": 2e-6}])
    _write(tmp_path, "04_fp16_end_to_end", [
        {"variant": "onnx-fp16", "images": 4, "images_same_count": 4, "iou_mean": 0.99981, "max_px_error": 0.5},
        {"variant": "numpy-fp16", "images": 4, "images_same_count": 3, "iou_mean": 0.99, "max_px_error": 2.0},
        {"variant": "coreml", "images": 4, "images_same_count": 4, "iou_mean": 0.9997, "max_px_error": 0.1}])
    return tmp_path


def test_figures_from_tables_written_by_hand(tables):
    figures = accuracy_figures(tables)
    assert figures["box_px"] == pytest.approx(3e-4) and figures["confidence"] == pytest.approx(2e-7, rel=1e-6)
    assert (figures["images"], figures["faces"], figures["same_counts"]) == (4, 5, True)
    assert (figures["layer"], figures["layer_images"]) == (1.2e-5, 2)
    assert figures["fp16"]["numpy-fp16"] == {"iou_mean": 0.99, "max_px": 2.0, "same_counts": False}
    section = accuracy_section(figures)
    assert "final boxes within 3.0e-4 px" in section and "confidences within 2.0e-7" in section
    assert "max abs difference 1.2e-5" in section and "mean IoU 0.9998, max 0.50 px" in section
    assert "max 2.00 px (face counts differ)" in section


def test_update_readme_rewrites_only_its_block(tables, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\nbefore\n{BEGIN}\n* typed: 1e-9 px\n{END}\nafter\n")
    assert update_readme(readme, tables) is True
    text = readme.read_text()
    assert text.startswith("# Title\n\nbefore\n") and text.endswith(f"{END}\nafter\n")
    assert "typed" not in text and "3.0e-4 px" in text
    assert update_readme(readme, tables) is False  # the same tables: nothing to change


def test_missing_block_or_table_is_a_one_line_error(tables, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# no block\n")
    with pytest.raises(FiguresUnavailable, match="has no block between"):
        update_readme(readme, tables)
    (tables / "05_summary.csv").unlink()
    with pytest.raises(FiguresUnavailable, match=r"05_summary.csv is missing: run ./run_all.sh"):
        accuracy_figures(tables)
