"""The README states accuracy bounds that every machine recorded in results/machines/accuracy.json satisfies: the
bounds are read from the README's text and checked against the records' numbers here, apart from the code that
writes them; the records are merged per CPU, computed from tables written here by hand, and a full workbench run
records them and leaves the README alone."""

from __future__ import annotations

import argparse
import csv
import json
import re
from pathlib import Path

import pytest

from mtcnn_lab.lab.accuracy_records import (
    BOUNDS,
    FP16_BOUNDS,
    RECORDS,
    SCHEMA,
    FiguresUnavailable,
    accuracy_figures,
    broken_bounds,
    cpu_model,
    load_records,
    merge_record,
    record_accuracy,
)

REPO = Path(__file__).resolve().parents[1]
NUMBER = r"([0-9][0-9.e+-]*)"


def _readme_bound(pattern: str) -> tuple[str, ...]:
    text = " ".join((REPO / "README.md").read_text(encoding="utf-8").split())  # line breaks as spaces
    found = re.findall(pattern, text)
    assert len(found) == 1, f"the README states {pattern!r} {len(found)} times, not once"
    return found[0] if isinstance(found[0], tuple) else (found[0],)


def _recorded() -> list[dict]:
    data = json.loads((REPO / "results" / "machines" / "accuracy.json").read_text(encoding="utf-8"))
    assert data["machines"], "no machine recorded"
    return data["machines"]


def test_every_recorded_machine_satisfies_the_readmes_fp32_bounds():
    images, faces = map(int, _readme_bound(r"All (\d+) inputs of OpenFace's C\+\+ reference .{0,60}?, (\d+) faces"))
    box_px, = map(float, _readme_bound(r"final boxes within " + NUMBER + " px"))
    confidence, = map(float, _readme_bound(r"confidences within " + NUMBER + r"\b"))
    assert "the same number of faces as C++ on every input" in " ".join((REPO / "README.md").read_text().split())
    for machine in _recorded():
        f = machine["figures"]
        assert (f["images"], f["faces"], f["same_counts"]) == (images, faces, True), machine["cpu"]
        assert f["box_px"] <= box_px, f"{machine['cpu']}: boxes {f['box_px']} px > the README's {box_px}"
        assert f["confidence"] <= confidence, f"{machine['cpu']}: confidence {f['confidence']} > {confidence}"


def test_every_recorded_machine_satisfies_the_readmes_layer_bound():
    images, layer = _readme_bound(r"C\+\+ layer dumps of (\d+) images: max abs difference within " + NUMBER)
    for machine in _recorded():
        f = machine["figures"]
        assert f["layer_images"] == int(images), machine["cpu"]
        assert f["layer"] <= float(layer), f"{machine['cpu']}: layers {f['layer']} > the README's {layer}"


def test_every_recorded_machine_satisfies_the_readmes_fp16_bounds():
    images, iou, px = _readme_bound(r"against FP32 on (\d+) inputs.{0,400}?the same number of faces on every "
                                    r"input, mean IoU at least " + NUMBER + ", boxes within " + NUMBER + " px")
    for machine in _recorded():
        f = machine["figures"]
        assert f["fp16_images"] == int(images) and f["fp16"], machine["cpu"]
        for variant, g in f["fp16"].items():
            where = f"{machine['cpu']}, {variant}"
            assert g["same_counts"], where
            assert g["iou_mean"] >= float(iou), f"{where}: mean IoU {g['iou_mean']} < the README's {iou}"
            assert g["max_px"] <= float(px), f"{where}: {g['max_px']} px > the README's {px}"


def test_the_workbench_warns_at_the_readmes_bounds():
    box_px, = _readme_bound(r"final boxes within " + NUMBER + " px")
    confidence, = _readme_bound(r"confidences within " + NUMBER + r"\b")
    layer, = _readme_bound(r"max abs difference within " + NUMBER)
    iou, px = _readme_bound(r"mean IoU at least " + NUMBER + ", boxes within " + NUMBER + " px")
    assert BOUNDS == {"box_px": float(box_px), "confidence": float(confidence), "layer": float(layer)}
    assert FP16_BOUNDS == {"iou_mean": float(iou), "max_px": float(px)}


def test_the_committed_tables_are_recorded_for_a_machine():
    figures = accuracy_figures(REPO / "results" / "tables")
    assert figures in [m["figures"] for m in _recorded()], \
        "results/tables' figures are not in results/machines/accuracy.json: run ./run_all.sh (a full run)"


def test_no_machine_is_recorded_twice():
    cpus = [m["cpu"] for m in _recorded()]
    assert len(cpus) == len(set(cpus))


def _write(folder: Path, name: str, rows: list[dict]) -> None:
    with (folder / f"{name}.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _face(backend, dx, dy=0.0, dw=0.0, dh=0.0, conf=(0.9, 0.9), matched="True"):
    return {"backend": backend, "matched": matched, "dx": dx, "dy": dy, "dw": dw, "dh": dh,
            "cpp_confidence": conf[0], "python_confidence": conf[1]}


@pytest.fixture
def results(tmp_path):
    tables = tmp_path / "results" / "tables"
    tables.mkdir(parents=True)
    faces = [_face("numpy", 1e-5, conf=(0.5, 0.5000002)), _face("torch", -3e-4), _face("onnx", 0, dh=2e-4),
             _face("openvino", 0, dw=-1e-4), _face("onnx-fp16", 0.4, conf=(0.5, 0.6)),  # FP16: not counted
             _face("numpy", 7.0, matched="False")]  # unmatched: not counted
    _write(tables, "05_per_face", faces)
    _write(tables, "05_summary", [{"backend": b, "images": 4, "images_same_count": 4, "faces_cpp": 5}
                                  for b in ("numpy", "torch", "onnx", "openvino")])
    _write(tables, "02_reference_vs_cpp_layers", [{"image": "a", "max_abs": 3e-6}, {"image": "b", "max_abs": 1.2e-5},
                                                  {"image": "a", "max_abs": 2e-6}])
    _write(tables, "04_fp16_end_to_end", [
        {"variant": "onnx-fp16", "images": 4, "images_same_count": 4, "iou_mean": 0.99981, "max_px_error": 0.5},
        {"variant": "numpy-fp16", "images": 4, "images_same_count": 3, "iou_mean": 0.99, "max_px_error": 2.0},
        {"variant": "coreml", "images": 4, "images_same_count": 4, "iou_mean": 0.9997, "max_px_error": 0.1}])
    return tmp_path / "results"


def test_figures_from_tables_written_by_hand(results):
    figures = accuracy_figures(results / "tables")
    assert figures["box_px"] == pytest.approx(3e-4) and figures["confidence"] == pytest.approx(2e-7, rel=1e-6)
    assert (figures["images"], figures["faces"], figures["same_counts"]) == (4, 5, True)
    assert (figures["layer"], figures["layer_images"]) == (1.2e-5, 2)
    assert figures["fp16"]["numpy-fp16"] == {"iou_mean": 0.99, "max_px": 2.0, "same_counts": False}
    assert figures["fp16"]["onnx-fp16"] == {"iou_mean": 0.99981, "max_px": 0.5, "same_counts": True}


def test_broken_bounds_name_each_bound_broken(results):
    figures = accuracy_figures(results / "tables")
    assert broken_bounds(figures) == ["numpy-fp16: the same number of faces as FP32 on every input",
                                      "numpy-fp16: mean IoU at least 0.9997 (measured 0.99000)",
                                      "numpy-fp16: boxes within 1 px of FP32 (measured 2)"]
    figures.update(box_px=1.5e-3, same_counts=False, fp16={})
    assert broken_bounds(figures) == ["FP32: the same number of faces as C++ on every input",
                                      "FP32: final boxes within 0.001 px of C++ (measured 0.0015)"]


def test_merge_replaces_the_same_cpu_and_keeps_the_others():
    old = [{"cpu": "B", "date": "1"}, {"cpu": "A", "date": "1"}]
    assert merge_record(old, {"cpu": "B", "date": "2"}) == [{"cpu": "A", "date": "1"}, {"cpu": "B", "date": "2"}]
    assert merge_record(old, {"cpu": "C", "date": "2"}) == [{"cpu": "A", "date": "1"}, {"cpu": "B", "date": "1"},
                                                            {"cpu": "C", "date": "2"}]
    assert merge_record([], {"cpu": "A"}) == [{"cpu": "A"}]


def test_records_file_keeps_other_machines(results):
    first = record_accuracy(results, cpu="CPU one", date="2026-01-02")
    record_accuracy(results, cpu="CPU two", date="2026-01-03")
    again = record_accuracy(results, cpu="CPU one", date="2026-01-04")
    machines = load_records(results / RECORDS)
    assert [(m["cpu"], m["date"]) for m in machines] == [("CPU one", "2026-01-04"), ("CPU two", "2026-01-03")]
    assert machines[0]["figures"] == first["figures"] == again["figures"] == accuracy_figures(results / "tables")


def test_a_foreign_records_file_is_refused(results):
    path = results / RECORDS
    path.parent.mkdir(parents=True)
    path.write_text('{"machines": []}')
    with pytest.raises(FiguresUnavailable, match="is not a records file"):
        record_accuracy(results, cpu="x")
    assert path.read_text() == '{"machines": []}'


def test_missing_table_is_a_one_line_error(results):
    (results / "tables" / "05_summary.csv").unlink()
    with pytest.raises(FiguresUnavailable, match=r"05_summary.csv is missing: run ./run_all.sh"):
        accuracy_figures(results / "tables")


def test_cpu_model_names_model_family_and_levels(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 17\n"
                       "model name\t: AMD EPYC 9R14\nflags\t\t: fpu sse4_2 avx2 fma avx512f avx512bw avx512vl\n"
                       "processor\t: 1\nmodel name\t: AMD EPYC 9R14\n")
    assert cpu_model(cpuinfo) == "AMD EPYC 9R14 (family 25, model 17; sse4.2 avx2 avx512)"


def test_a_full_workbench_run_records_and_warns_but_leaves_the_readme(results, monkeypatch, capsys):
    import mtcnn_lab.lab.workbench as lab_workbench
    from mtcnn_lab.cli import workbench

    monkeypatch.setattr(lab_workbench, "run_notebooks", lambda *args, **kwargs: iter(()))
    monkeypatch.setattr("mtcnn_lab.lab.accuracy_records.cpu_model", lambda: "Test CPU")
    readme = results.parent / "README.md"
    readme.write_bytes(b"# any text\n")
    args = argparse.Namespace(root=str(results.parent), results=None, parameter=None, quick=False, only=None)
    assert workbench.run(args) == 0
    assert readme.read_bytes() == b"# any text\n"
    assert [m["cpu"] for m in load_records(results / RECORDS)] == ["Test CPU"]
    out = capsys.readouterr().out
    assert "WARNING: the README's bound 'numpy-fp16: mean IoU at least 0.9997" in out and "on Test CPU" in out
    (results / RECORDS).unlink()
    args.quick = True  # a quick run measures too little to record
    workbench.run(args)
    assert not (results / RECORDS).exists()
    args.quick = False  # a user's own data set is not the reference inputs the README speaks of
    monkeypatch.setenv("MTCNN_LAB_MANIFEST", str(results / "study.json"))
    workbench.run(args)
    assert not (results / RECORDS).exists()
    monkeypatch.delenv("MTCNN_LAB_MANIFEST")
    for args.parameter, args.results in [([["manifest", "study.json"]], None), (None, str(results))]:
        workbench.run(args)
        assert not (results / RECORDS).exists()


def test_a_records_file_without_machines_is_refused_in_one_line(tmp_path):
    path = tmp_path / "accuracy.json"
    for data in ({"schema": SCHEMA}, {"schema": SCHEMA, "machines": [{"cpu": 1}]}):
        path.write_text(json.dumps(data))
        with pytest.raises(FiguresUnavailable, match="is not a records file"):
            load_records(path)
