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
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address="127.0.0.1:0")
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
    video = corpus / "clip000.avi"
    assert is_complete(result, video, 1, "opencv-4.6", **SETTINGS)
    assert not is_complete(result, video, 2, "opencv-4.6", **SETTINGS)  # another --every: redone
    assert not is_complete(result, video, 1, "upright", **SETTINGS)  # another decode profile: redone
    assert not is_complete(result, video, 1, "opencv-4.6", "openvino", "zhang2016")  # another backend: redone
    assert not is_complete(result, video, 1, "opencv-4.6", "numpy", "openface")  # other weights: redone
    assert not is_complete(result, corpus / "clip001.avi", 1, "opencv-4.6", **SETTINGS)  # another video: redone
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
        (out / ".clip003.avi.json.opencv-4.6.frames.jsonl").write_text('{"frame": 0}\n')  # as a stopped video
        (out / ".clip003.avi.json.abcd1234.part").write_bytes(b"{")  # as a torn atomic write would leave it
        (out / "notes.csv").write_text("mine\n")  # the user's: kept
        raise KeyboardInterrupt

    monkeypatch.setattr(distributed, "as_completed", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_corpus(items, out, n_workers=1, root=corpus, progress=False, **SETTINGS)
    assert (out / "notes.csv").read_text() == "mine\n"
    (out / "notes.csv").unlink()
    leftovers = [p.name for p in out.iterdir()]
    assert not [name for name in leftovers if name.startswith(".")]
    for name in leftovers:  # only result files, complete ones or a result file whose face table was not yet written
        result = out / (name if name.endswith(".json") else name.removesuffix(".csv") + ".json")
        assert is_complete(result, corpus / result.name.removesuffix(".json"), 1, "opencv-4.6", **SETTINGS) or (
            name.endswith(".json") and not (out / csv_name(name)).exists())


def test_reliability_fuzz_sample_has_no_crash(tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "reliability_report.py"), "--sample", "50",
                             "--no-corpus", "--no-faults", "--out", str(tmp_path)], capture_output=True, text=True,
                            errors="replace", timeout=120)
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


def _face_image(path: Path, blank: bool = False) -> Path:
    """A small still of matplotlib's Grace Hopper sample (one face), or a blank grey one (no face)."""
    import cv2
    import matplotlib.cbook
    import numpy as np

    face = cv2.resize(cv2.imread(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)), (96, 120))
    cv2.imwrite(str(path), np.full_like(face, 128) if blank else face)
    return path


def _faces(result: Path) -> list:
    return [(Path(e["image"]).name, e.get("frame"), e.get("faces")) for e in json.loads(result.read_text())["results"]]


def test_a_run_removes_only_the_partial_files_of_its_own_items(tmp_path, corpus):
    """Look-alikes of every partial-file pattern, a user's face tables and another run's live partial files
    in OUTDIR are all still there, unchanged, after a run (and after a Ctrl-C)."""
    from mtcnn_lab.io.entries import settings_file

    out = tmp_path / "out"
    out.mkdir()
    other = f".{output_name('clip009.avi')}.opencv-4.6.frames.jsonl"  # a second run's item, still running
    planted = {"my_faces.csv": face_csv([]), ".backup_faces.csv": face_csv([]), ".notes.part": b"keep\n",
               ".mine.crashed": b"", ".mine.frames.jsonl": b'{"frame": 0, "faces": []}\n',
               ".mine.frames.jsonl.settings.json": b"{}", other: b'{"frame": 0, "faces": []}\n',
               settings_file(Path(other)).name: b"{}", ".clip009.avi.json.abcd1234.part": b"{",
               ".clip009.avi.crashed": b"", "clip009.avi.csv": face_csv([])}
    for name, data in planted.items():
        (out / name).write_bytes(data)
    rows = run_corpus([corpus / "clip000.avi"], out, n_workers=1, root=corpus, progress=False, **SETTINGS)
    assert [r["status"] for r in rows] == ["ok"]
    assert {name: (out / name).read_bytes() for name in planted if (out / name).exists()} == planted


def test_resume_redoes_the_items_whose_inputs_changed(tmp_path, corpus, client2):
    """A replaced video, an image folder with an image deleted and two added, and an image overwritten in place
    (the folder's own size and time unchanged) are redone; the unchanged video is skipped."""
    import os
    import shutil

    data = tmp_path / "data"
    (data / "stills").mkdir(parents=True)
    (data / "kept").mkdir()
    for name in ("clip000.avi", "clip001.avi"):
        shutil.copy(corpus / name, data / name)
    _face_image(data / "stills" / "a.jpg")
    _face_image(data / "stills" / "b.jpg")
    _face_image(data / "kept" / "x.jpg", blank=True)
    out = tmp_path / "out"

    def statuses() -> dict[str, str]:
        rows = run_corpus(find_corpus(data), out, client=client2, root=data, progress=False, **SETTINGS)
        return {Path(r["item"]).name: r["status"] for r in rows}

    assert set(statuses().values()) == {"ok"}
    shutil.copy(corpus / "clip005.avi", data / "clip000.avi")  # another video under the same name
    (data / "stills" / "a.jpg").unlink()
    _face_image(data / "stills" / "c.jpg", blank=True)
    _face_image(data / "stills" / "d.jpg")
    folder = os.stat(data / "kept")
    _face_image(data / "kept" / "x.jpg")  # overwritten in place: the folder's size and time do not change
    assert (os.stat(data / "kept").st_size, os.stat(data / "kept").st_mtime_ns) == (folder.st_size,
                                                                                  folder.st_mtime_ns)
    assert statuses() == {"clip000.avi": "ok", "clip001.avi": "skipped", "kept": "ok", "stills": "ok"}
    # each redone item holds what a fresh run of its inputs gives
    fresh = tmp_path / "fresh"
    shutil.copytree(data, fresh)
    for item in find_corpus(fresh):
        process_video(item, fresh / "results", **SETTINGS)
    for name in ("clip000.avi.json", "kept.json", "stills.json"):
        assert _faces(out / name) == _faces(fresh / "results" / name)
    assert [Path(e["image"]).name for e in json.loads((out / "stills.json").read_text())["results"]] == sorted(
        p.name for p in (data / "stills").iterdir())
    assert statuses() == dict.fromkeys(["clip000.avi", "clip001.avi", "kept", "stills"], "skipped")


def test_an_item_is_complete_only_with_all_its_outputs(tmp_path, corpus, client2):
    out = tmp_path / "out"
    items = find_corpus(corpus)[:2]
    run_corpus(items, out, client=client2, root=corpus, progress=False, **SETTINGS)
    tables = {p.name: p.read_bytes() for p in out.glob("clip*.csv")}
    results = {p.name: p.read_bytes() for p in out.glob("clip*.json")}
    (out / "clip000.avi.csv").unlink()
    (out / "clip001.avi.json").unlink()
    rows = run_corpus(items, out, client=client2, root=corpus, progress=False, **SETTINGS)
    assert [r["status"] for r in rows] == ["ok", "ok"]
    assert {p.name: p.read_bytes() for p in out.glob("clip*.csv")} == tables
    assert {p.name: p.read_bytes() for p in out.glob("clip*.json")} == results


def test_hostile_names_give_error_rows_and_collisions_name_both_items(tmp_path, corpus, client2, capsys):
    import os
    import shutil

    from mtcnn_lab.errors import ParameterError

    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(corpus / "clip000.avi", data / "good.avi")
    try:
        shutil.copy(corpus / "clip001.avi", os.fsencode(data) + b"/bad\xff.avi")  # not valid UTF-8
    except OSError:
        pytest.skip("this file system refuses file names that are not UTF-8")
    (data / "loop.avi").symlink_to("loop.avi")  # a link to itself
    out = tmp_path / "out"
    code = main(["corpus", str(data), "--out", str(out), "--scheduler", client2.scheduler.address,
                 "--backend", "numpy", "--weights", "zhang2016", "-q"])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert [line.split(": ")[1] for line in err.splitlines()] == [repr(str(data / "bad\udcff.avi")),
                                                                   f"'{data / 'loop.avi'}'"]
    assert "not valid UTF-8" in err and "symbolic links" in err
    assert (out / "good.avi.json").exists()
    # two symlinks to videos of one name elsewhere: each result named after its link
    (tmp_path / "d1").mkdir()
    (tmp_path / "d2").mkdir()
    links = tmp_path / "links"
    links.mkdir()
    for folder, link in (("d1", "x.avi"), ("d2", "y.avi")):
        shutil.copy(corpus / "clip000.avi", tmp_path / folder / "v.avi")
        (links / link).symlink_to(tmp_path / folder / "v.avi")
    assert [output_name(item, links) for item in find_corpus(links)] == ["x.avi.json", "y.avi.json"]
    # a__b.avi beside a/b.avi: one line naming both, with a fix that works on the command line
    (data / "a").mkdir()
    shutil.copy(corpus / "clip000.avi", data / "a" / "b.avi")
    shutil.copy(corpus / "clip000.avi", data / "a__b.avi")
    with pytest.raises(ParameterError) as caught:
        run_corpus([data / "a" / "b.avi", data / "a__b.avi"], out, client=client2, root=data, progress=False,
                   **SETTINGS)
    message = str(caught.value)
    assert str(data / "a" / "b.avi") in message and str(data / "a__b.avi") in message and "\n" not in message
    assert "root=" not in message and "rename" in message


def test_local_cluster_dashboard_listens_on_localhost_only(tmp_path):
    import psutil

    from mtcnn_lab.corpus.run import _local_cluster

    def listening() -> set:
        return {c.laddr for c in psutil.Process().net_connections("inet") if c.status == psutil.CONN_LISTEN}

    before = listening()
    with _local_cluster(1) as cluster:
        opened = listening() - before  # the scheduler's and its dashboard's (this module's other cluster is older)
        assert len(opened) >= 2 and {address.ip for address in opened} == {"127.0.0.1"}, opened
        assert cluster.dashboard_link.startswith("http://127.0.0.1:")


@pytest.mark.timeout(60)
def test_a_scheduler_address_of_another_service_is_one_line(tmp_path, corpus):
    import socket
    import threading

    from mtcnn_lab.errors import InputError, ParameterError

    server = socket.create_server(("127.0.0.1", 0))

    def answer_garbage() -> None:
        with server:
            while True:
                try:
                    conn, _ = server.accept()
                except OSError:
                    return
                with conn:
                    conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n" + b"\xff" * 64)
                    time.sleep(0.2)

    threading.Thread(target=answer_garbage, daemon=True).start()
    address = f"tcp://127.0.0.1:{server.getsockname()[1]}"
    try:
        with pytest.raises(ParameterError, match=r"cannot connect to the Dask scheduler .*; give its address"):
            run_corpus(find_corpus(corpus)[:1], tmp_path / "out", scheduler=address, progress=False, **SETTINGS)
    finally:
        server.close()
    manifest = tmp_path / "deep.json"
    manifest.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(InputError, match="deep.json: not a readable JSON manifest"):
        find_corpus(manifest)


@pytest.mark.timeout(120)
def test_ctrl_c_on_the_cli_prints_one_line(tmp_path):
    """SIGINT to the whole process group, as a terminal's Ctrl-C sends it: no worker tracebacks."""
    import os
    import signal

    make_synthetic_corpus(tmp_path / "long", n_videos=4, n_frames=60, n_corrupt=0)
    out = tmp_path / "out"
    process = subprocess.Popen([sys.executable, "-m", "mtcnn_lab.cli", "corpus", str(tmp_path / "long"), "--out",
                                str(out), "--workers", "2", "--backend", "numpy", "--weights", "zhang2016", "-q"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.time() + 60
        while time.time() < deadline and not (out.is_dir() and list(out.glob(".*.frames.jsonl"))):
            time.sleep(0.05)
        os.killpg(process.pid, signal.SIGINT)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode == 130 and "Traceback" not in err and len(err.splitlines()) <= 3, err
    assert "interrupted" in err
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]
