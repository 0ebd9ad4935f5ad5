"""Corpus processing on Dask: real LocalClusters, a killed worker, corrupt files, resume, Ctrl-C."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

distributed = pytest.importorskip("distributed")
pytest.importorskip("matplotlib")

from mtcnn_lab.cli import main  # noqa: E402
from mtcnn_lab.corpus import csv_name, find_corpus, is_complete, output_name, process_video, run_corpus  # noqa: E402
from mtcnn_lab.io.face_table import face_csv  # noqa: E402
from mtcnn_lab.lab.synthetic import make_synthetic_corpus  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = {"backend": "numpy", "weights": "zhang2016"}
N_VIDEOS, N_CORRUPT = 20, 2


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("corpus")
    make_synthetic_corpus(folder, n_videos=N_VIDEOS, n_frames=6, n_corrupt=N_CORRUPT)
    return folder


@pytest.fixture(scope="module")
def client2():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0")
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


def result_files(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.name.endswith(".avi.json")}


def test_find_corpus_videos_image_folders_and_manifest(tmp_path, corpus):
    import cv2
    import numpy as np

    from mtcnn_lab.errors import InputError, ParameterError

    items = find_corpus(corpus)
    assert len(items) == N_VIDEOS + N_CORRUPT and items == sorted(items)
    (tmp_path / "stills").mkdir()
    cv2.imwrite(str(tmp_path / "stills" / "a.png"), np.zeros((50, 50, 3), np.uint8))
    (tmp_path / ".hidden.avi").write_bytes(b"x")
    (tmp_path / "v.avi").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("no")
    assert find_corpus(tmp_path) == [tmp_path / "stills", tmp_path / "v.avi"]
    manifest = tmp_path / "m.json"
    manifest.write_text(json.dumps({"root": str(corpus), "videos": [{"path": "clip001.avi"}]}))
    assert find_corpus(manifest) == [(corpus / "clip001.avi").resolve()]
    # the schema's other forms of "videos" (data/README.md): a glob, a list of paths and globs
    every_video = sorted(p for p in corpus.iterdir() if p.suffix == ".avi")
    for videos in ("*.avi", ["clip00*.avi", "*.avi"]):
        manifest.write_text(json.dumps({"root": str(corpus), "videos": videos}))
        assert find_corpus(manifest) == every_video
    manifest.write_text(json.dumps({"root": str(corpus), "videos": "*.mkv"}))
    with pytest.raises(InputError, match="names no video file"):
        find_corpus(manifest)
    for not_a_manifest in ({}, {"meta": {}, "results": []}):  # e.g. a detect --json results file
        manifest.write_text(json.dumps(not_a_manifest))
        with pytest.raises(InputError, match=r"m.json: not a manifest \(a JSON object with a 'root' folder"):
            find_corpus(manifest)
    with pytest.raises(ParameterError, match=r"run_corpus takes a list of items, not the path .*pass find_corpus\("):
        run_corpus(str(corpus), tmp_path / "out")
    with pytest.raises(ParameterError, match=r"cannot connect to the Dask scheduler 'nonsense' \(.*port.*\); give"):
        run_corpus(items[:1], tmp_path / "out", scheduler="nonsense", progress=False, **SETTINGS)
    assert output_name(tmp_path / "stills" / "x.avi", tmp_path) == "stills__x.avi.json"

    with pytest.raises(InputError, match="no such folder"):
        find_corpus(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no videos"):
        find_corpus(tmp_path / "empty")


def test_process_video_writes_result_and_reports_corrupt(tmp_path, corpus):
    row = process_video(corpus / "clip000.avi", tmp_path, **SETTINGS)
    assert row["status"] == "ok" and row["frames"] == 6
    data = json.loads((tmp_path / "clip000.avi.json").read_text())
    assert data["meta"]["backend"] == "numpy" and len(data["results"]) == 6
    assert [e["frame"] for e in data["results"]] == list(range(6))
    assert not list(tmp_path.glob(".*"))  # partial JSON Lines removed
    result = tmp_path / "clip000.avi.json"
    assert is_complete(result, 1, "opencv-4.6", **SETTINGS) and not is_complete(result, 2, "opencv-4.6", **SETTINGS)
    assert not is_complete(result, 1, "upright", **SETTINGS)  # another decode profile: redone
    assert not is_complete(result, 1, "opencv-4.6", "openvino", "zhang2016")  # another backend: redone
    assert not is_complete(result, 1, "opencv-4.6", "numpy", "openface")  # other weights: redone
    decoding = data["meta"]["decoding"]
    assert data["meta"]["decode"] == decoding["profile"] == "opencv-4.6" and decoding["frames"] == 6
    assert decoding["codec"] == "mjpeg" and decoding["upright"] is True  # the corpus fixture writes MJPG clips
    bad = process_video(corpus / "corrupt00.avi", tmp_path, **SETTINGS)
    assert bad["status"] == "error" and "cannot open video" in bad["error"] and "\n" not in bad["error"]
    assert not (tmp_path / "corrupt00.avi.json").exists() and not (tmp_path / "corrupt00.avi.csv").exists()


def test_each_video_gets_its_face_table_beside_its_result_file(tmp_path, corpus):
    import csv

    process_video(corpus / "clip001.avi", tmp_path, **SETTINGS)
    results = json.loads((tmp_path / "clip001.avi.json").read_text())["results"]
    with (tmp_path / csv_name("clip001.avi.json")).open(newline="") as handle:
        table = list(csv.DictReader(handle))
    expected = [(str(e["frame"]), str(i), face["bbox"]) for e in results for i, face in enumerate(e["faces"])]
    expected += [(str(e["frame"]), "", None) for e in results if not e["faces"]]
    got = [(r["frame"], r["face"], [float(r[k]) for k in "xywh"] if r["face"] else None) for r in table]
    assert sorted(got, key=str) == sorted(expected, key=str)
    assert {r["path"] for r in table} == {str(corpus / "clip001.avi")} and len(table) >= 6
    assert csv_name("clips__a.avi.json") == "clips__a.avi.csv"
    table_bytes = (tmp_path / "clip001.avi.csv").read_bytes()
    (tmp_path / "clip001.avi.csv").unlink()  # as a result file from before face tables were written
    assert process_video(corpus / "clip001.avi", tmp_path, **SETTINGS)["status"] == "ok"
    assert (tmp_path / "clip001.avi.csv").read_bytes() == table_bytes


def test_image_folder_item(tmp_path):
    import cv2
    import matplotlib.cbook

    folder = tmp_path / "stills"
    folder.mkdir()
    face = cv2.imread(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    cv2.imwrite(str(folder / "a.jpg"), cv2.resize(face, (128, 160)))
    (folder / "b.png").write_bytes(b"not a png")
    row = process_video(folder, tmp_path / "out", **SETTINGS)
    assert row["status"] == "ok" and row["frames"] == 2 and row["errors"] == 1 and row["faces"] >= 1
    results = json.loads((tmp_path / "out" / "stills.json").read_text())["results"]
    assert "error" in results[1] and results[0]["faces"]


def test_two_workers_with_killed_worker_equal_one_worker(tmp_path, corpus, client2):
    items = find_corpus(corpus)
    one = run_corpus(items, tmp_path / "one", n_workers=1, root=corpus, progress=False, **SETTINGS)
    victim = str(corpus / "clip007.avi")
    two = run_corpus(items, tmp_path / "two", client=client2, root=corpus, progress=False,
                     crash_after_frames={victim: 3}, **SETTINGS)
    for rows in (one, two):
        errors = [r for r in rows if r["status"] == "error"]
        assert sorted(Path(r["item"]).name for r in errors) == ["corrupt00.avi", "corrupt01.mp4"]
        assert all(r["error"] and "\n" not in r["error"] for r in errors)
        assert sum(r["status"] == "ok" for r in rows) == N_VIDEOS
    files_one, files_two = result_files(tmp_path / "one"), result_files(tmp_path / "two")
    assert len(files_one) == N_VIDEOS and files_one == files_two  # byte-identical
    # the victim's worker died once: the retry ran in another process, and resumed from frame 3
    victim_row = next(r for r in two if r["item"] == victim)
    assert victim_row["status"] == "ok" and victim_row["frames"] == 6 and victim_row["resumed"] == 3
    assert not [p for p in (tmp_path / "two").iterdir() if p.name.startswith(".")]  # no partial files
    summary = json.loads((tmp_path / "two" / "summary.json").read_text())
    assert summary["meta"]["error"] == 2 and summary["meta"]["ok"] == N_VIDEOS
    assert (tmp_path / "two" / "summary.csv").read_text().count("\n") == N_VIDEOS + N_CORRUPT + 1
    # resume: complete results are skipped, the corrupt ones are tried again
    again = run_corpus(items, tmp_path / "two", client=client2, root=corpus, progress=False, **SETTINGS)
    assert sum(r["status"] == "skipped" for r in again) == N_VIDEOS
    assert sum(r["status"] == "error" for r in again) == N_CORRUPT
    assert result_files(tmp_path / "two") == files_one


def test_cli_corpus_on_existing_scheduler(tmp_path, corpus, client2, capsys):
    out = tmp_path / "out"
    code = main(["corpus", str(corpus), "--out", str(out), "--scheduler", client2.scheduler.address,
                 "--backend", "numpy", "--weights", "zhang2016", "-q"])
    captured = capsys.readouterr()
    assert code == 1  # two corrupt inputs
    assert "corrupt00.avi" in captured.err and "Traceback" not in captured.err
    assert len(result_files(out)) == N_VIDEOS
    assert main(["corpus", str(tmp_path / "nope"), "--out", str(out)]) == 2


def test_cli_corpus_of_a_manifest_names_results_relative_to_its_root(tmp_path, corpus, client2):
    """Two videos of one name in different folders of a manifest's root get two result files."""
    import shutil

    for folder in ("a", "b"):
        (tmp_path / "videos" / folder).mkdir(parents=True)
        shutil.copy(corpus / "clip001.avi", tmp_path / "videos" / folder / "clip.avi")
    manifest = tmp_path / "m.json"
    manifest.write_text(json.dumps({"root": "videos", "videos": "**/*.avi"}))
    out = tmp_path / "out"
    assert main(["corpus", str(manifest), "--out", str(out), "--scheduler", client2.scheduler.address,
                 "--backend", "numpy", "--weights", "zhang2016", "-q"]) == 0
    assert sorted(result_files(out)) == ["a__clip.avi.json", "b__clip.avi.json"]


def test_ctrl_c_leaves_no_partial_files(tmp_path, corpus, monkeypatch):
    out = tmp_path / "out"
    items = find_corpus(corpus)[:4]

    def interrupted(futures, *args, **kwargs):
        deadline = time.time() + 20  # wait until the tasks run, then "press Ctrl-C"
        while time.time() < deadline and not [p for p in out.iterdir() if p.name != "summary.json"]:
            time.sleep(0.005)
        (out / ".clip003.avi.frames.jsonl").write_text('{"frame": 0}\n')  # as a stopped video leaves it
        (out / ".clip003.avi.json.abc.part").write_bytes(b"{")  # as a torn atomic write would leave it
        (out / "clip003.avi.csv").write_bytes(face_csv([]))  # as a stop between an item's table and its result
        (out / "notes.csv").write_text("mine\n")  # the user's: kept
        raise KeyboardInterrupt

    monkeypatch.setattr(distributed, "as_completed", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_corpus(items, out, n_workers=1, root=corpus, progress=False, **SETTINGS)
    assert (out / "notes.csv").read_text() == "mine\n"
    (out / "notes.csv").unlink()
    leftovers = [p.name for p in out.iterdir()]
    assert not [name for name in leftovers if name.startswith(".")]
    for name in leftovers:  # only complete result files, each with its face table
        result = out / (name if name.endswith(".json") else name.removesuffix(".csv") + ".json")
        assert is_complete(result, 1, "opencv-4.6", **SETTINGS) and (out / csv_name(result.name)).exists()


def test_reliability_fuzz_sample_has_no_crash(tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "reliability_report.py"), "--sample", "50",
                             "--no-corpus", "--out", str(tmp_path)], capture_output=True, text=True, errors="replace",
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((tmp_path / "reliability.json").read_text())
    assert report["meta"]["inputs"] >= 50 and report["meta"]["crash"] == 0


def test_a_partial_file_of_another_attempt_with_other_settings_is_discarded_with_a_warning(tmp_path, corpus, caplog):
    from threadpoolctl import threadpool_limits

    from mtcnn_lab.detector import MTCNN
    from mtcnn_lab.io.entries import settings_file
    from mtcnn_lab.video.stream import detect_video, run_settings

    video = corpus / "clip001.avi"
    with threadpool_limits(1):  # as the corpus task runs (numpy's sums depend on the BLAS thread count)
        fresh = list(detect_video(MTCNN(**SETTINGS, threads=1), video, progress=False))  # what the item holds
    jsonl = tmp_path / f".{output_name(video)}.opencv-4.6.frames.jsonl"
    marked = [dict(fresh[k], faces=[{"bbox": [1, 2, 3, 4]}]) for k in (0, 1)]  # not what the detector gives
    jsonl.write_text("".join(json.dumps(e) + "\n" for e in marked))
    other = run_settings(MTCNN(**SETTINGS, threads=1, min_face=400), video, "opencv-4.6")  # an attempt at min_face 400
    settings_file(jsonl).write_text(json.dumps(other, default=str))
    with caplog.at_level("WARNING", logger="mtcnn_lab.corpus.task"):
        row = process_video(video, tmp_path, **SETTINGS)
    assert row["status"] == "ok" and row["resumed"] == 0 and row["frames"] == 6
    assert "2 frame(s) of an earlier attempt with other settings discarded" in caplog.text
    results = json.loads((tmp_path / output_name(video)).read_text())["results"]
    assert [e["faces"] for e in results] == [e["faces"] for e in fresh]
    assert not jsonl.exists() and not settings_file(jsonl).exists()
