"""Reliability report: bad inputs must give clear errors, never crashes; a corpus survives faults.

Tries >= 1,000 bad inputs and classifies each outcome:

* ``ok``: the call returned (e.g. a byte flip inside float weights still parses; a truncated AVI
  still decodes its first frames; an odd array is converted and gives no faces);
* ``clear error``: a :class:`mtcnn_lab.errors.MtcnnLabError` with a one-line message;
* ``crash``: anything else (another exception type, or a multi-line message).

Categories: fuzzed OpenFace ``.dat`` weight files (truncations, byte flips, header overwrites,
trailing bytes, random bytes of the three nets) -> ``read_dat``; corrupt images (random bytes,
truncated and damaged JPEG/PNG, empty files) -> ``read_image``; corrupt videos (random bytes,
truncated and damaged AVI/MP4) -> ``count_frames`` and ``iter_video_frames``; odd arrays (dtypes,
0-size, 1x1, 4-D, 5 channels, huge aspect ratios) -> ``MTCNN.detect``. Then a corpus run with fault
injection: 20 generated videos + 2 corrupt ones on a 1-worker and a 2-worker ``LocalCluster``, one
worker killed mid-video in the 2-worker run.

Then, through the command line as a user runs it (``--no-faults`` skips it): hostile files (a file name
that is not UTF-8, a symlink loop, a PNG declaring 30000x30000 pixels, a manifest nested 100,000 deep, a FIFO
where a ``.dat`` file belongs, tampered per-frame files) must each be a one-line error or a fallback; files that
look like a corpus run's own, planted in its ``--out`` folder, must all survive two runs; a corpus rerun after a
video was replaced and an image overwritten in place must redo exactly those items; ``detect --every`` killed
by SIGINT, SIGTERM and SIGKILL of its process group, then rerun, must give an uninterrupted run's results.

Writes ``results/tables/reliability.json`` and ``.csv`` (rows: category x outcome counts; meta:
totals and the corpus results). Exits 1 if any crash, or if the corpus run misses its targets.

    python scripts/reliability_report.py [--sample N] [--no-corpus] [--out results/tables]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

import cv2
import numpy as np

from mtcnn_lab.errors import MtcnnLabError
from mtcnn_lab.io.tables import save_table

ROOT = Path(__file__).resolve().parents[1]


def classify(call) -> tuple[str, str]:
    """Run ``call()``; return (outcome, message)."""
    try:
        call()
    except MtcnnLabError as err:
        message = str(err)
        if message and "\n" not in message:
            return "clear error", message
        return "crash", f"{type(err).__name__} with a multi-line or empty message: {message!r}"
    except Exception as err:  # noqa: BLE001 - that is what is being counted
        return "crash", f"{type(err).__name__}: {err}"
    return "ok", ""


# --------------------------------------------------------------------------------------------
# the bad inputs
# --------------------------------------------------------------------------------------------


def dat_cases(rng: np.random.Generator, n: int):
    from mtcnn_lab.weights.dat import read_dat, write_dat
    from mtcnn_lab.weights.sets import load_weights

    weights = load_weights("zhang2016")
    bases = {name: write_dat(getattr(weights, name)) for name in ("pnet", "rnet", "onet")}
    kinds = ("truncate", "flip", "header", "trailing", "random", "int-overwrite")
    for k in range(n):
        name = ("pnet", "rnet", "onet")[k % 3]
        data = bytearray(bases[name])
        kind = kinds[(k // 3) % len(kinds)]
        if kind == "truncate":
            data = data[: int(rng.integers(0, len(data)))]
        elif kind == "flip":
            for _ in range(int(rng.integers(1, 8))):
                data[int(rng.integers(0, len(data)))] ^= 1 << int(rng.integers(0, 8))
        elif kind == "header":  # the layer count and the first layer's header
            pos = int(rng.integers(0, 16)) & ~3
            value = int(rng.choice([-1, 0, 2**31 - 1, 65, 7, int(rng.integers(-99, 99))]))
            data[pos:pos + 4] = struct.pack("<i", value)
        elif kind == "trailing":
            data += bytes(rng.integers(0, 256, int(rng.integers(1, 64)), dtype=np.uint8))
        elif kind == "random":
            data = bytearray(rng.integers(0, 256, int(rng.integers(0, 4096)), dtype=np.uint8).tobytes())
        else:  # an int32 anywhere becomes a huge, negative or odd value (matrix rows/cols/type)
            pos = int(rng.integers(0, len(data) - 4)) & ~3
            data[pos:pos + 4] = struct.pack("<i", int(rng.choice([-5, 0, 1 << 30, 3, 6, 1000])))
        blob = bytes(data)
        yield "dat", f"{name}:{kind}", lambda blob=blob, name=name: read_dat(blob, name)


def _sample_images(folder: Path) -> dict[str, bytes]:
    import matplotlib.cbook

    face = cv2.imread(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    face = cv2.resize(face, (120, 150))
    out = {}
    for suffix in (".jpg", ".png", ".bmp", ".webp", ".tif"):
        ok, buf = cv2.imencode(suffix, face)
        if ok:
            out[suffix] = buf.tobytes()
    return out


def image_cases(rng: np.random.Generator, n: int, folder: Path):
    from mtcnn_lab.io.images import read_image

    samples = _sample_images(folder)
    suffixes = sorted(samples)
    kinds = ("random", "truncate", "flip", "empty", "header", "wrong-suffix")
    for k in range(n):
        suffix = suffixes[k % len(suffixes)]
        kind = kinds[(k // len(suffixes)) % len(kinds)]
        data = bytearray(samples[suffix])
        if kind == "random":
            data = bytearray(rng.integers(0, 256, int(rng.integers(1, 3000)), dtype=np.uint8).tobytes())
        elif kind == "truncate":
            data = data[: int(rng.integers(1, len(data)))]
        elif kind == "flip":
            for _ in range(int(rng.integers(1, 20))):
                data[int(rng.integers(0, len(data)))] = int(rng.integers(0, 256))
        elif kind == "empty":
            data = bytearray()
        elif kind == "header":
            end = min(len(data), 64)
            pos = int(rng.integers(0, end - 4))
            data[pos:pos + 4] = rng.integers(0, 256, 4, dtype=np.uint8).tobytes()
        else:  # a valid image of another format under this suffix
            data = bytearray(samples[suffixes[(k + 1) % len(suffixes)]])
        path = folder / f"img{k:05d}{suffix}"
        path.write_bytes(bytes(data))
        yield "image", f"{suffix}:{kind}", lambda path=path: read_image(path)


def _sample_videos(folder: Path) -> dict[str, bytes]:
    out = {}
    for suffix, fourcc in ((".avi", "MJPG"), (".mp4", "mp4v")):
        path = folder / f"sample{suffix}"
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 10, (96, 64))
        for k in range(8):
            writer.write(np.full((64, 96, 3), 20 * k, np.uint8))
        writer.release()
        if path.exists() and path.stat().st_size > 0:
            out[suffix] = path.read_bytes()
    return out


def _decode_all(path: Path) -> None:
    from mtcnn_lab.io.videos import count_frames, iter_video_frames

    count_frames(path)
    for _ in iter_video_frames(path, step=2):
        pass


def video_cases(rng: np.random.Generator, n: int, folder: Path):
    samples = _sample_videos(folder)
    suffixes = sorted(samples)
    kinds = ("random", "truncate", "flip", "empty", "header", "text")
    for k in range(n):
        suffix = suffixes[k % len(suffixes)]
        kind = kinds[(k // len(suffixes)) % len(kinds)]
        data = bytearray(samples[suffix])
        if kind == "random":
            data = bytearray(rng.integers(0, 256, int(rng.integers(1, 8000)), dtype=np.uint8).tobytes())
        elif kind == "truncate":
            data = data[: int(rng.integers(1, len(data)))]
        elif kind == "flip":
            for _ in range(int(rng.integers(1, 40))):
                data[int(rng.integers(0, len(data)))] = int(rng.integers(0, 256))
        elif kind == "empty":
            data = bytearray()
        elif kind == "header":
            pos = int(rng.integers(0, 200))
            data[pos:pos + 8] = rng.integers(0, 256, 8, dtype=np.uint8).tobytes()
        else:
            data = bytearray(b"not a video at all\n" * int(rng.integers(1, 100)))
        path = folder / f"vid{k:05d}{suffix}"
        path.write_bytes(bytes(data))
        yield "video", f"{suffix}:{kind}", lambda path=path: _decode_all(path)


def array_cases(rng: np.random.Generator, n: int):
    from mtcnn_lab.detector import MTCNN

    detector = MTCNN(backend="numpy", weights="zhang2016")
    makers = [
        ("float64", lambda: rng.random((80, 90, 3))),
        ("float32-255", lambda: (rng.random((80, 90, 3)) * 255).astype(np.float32)),
        ("nan", lambda: np.full((80, 90, 3), np.nan)),
        ("uint16", lambda: rng.integers(0, 65535, (70, 70, 3), dtype=np.uint16)),
        ("int64", lambda: rng.integers(-5, 300, (70, 70, 3))),
        ("bool", lambda: rng.random((70, 70, 3)) > 0.5),
        ("object", lambda: np.empty((70, 70, 3), dtype=object)),
        ("complex", lambda: np.zeros((70, 70, 3), np.complex64)),
        ("str", lambda: np.full((70, 70, 3), "a")),
        ("0-size", lambda: np.zeros((0, 50, 3), np.uint8)),
        ("0x0", lambda: np.zeros((0, 0, 3), np.uint8)),
        ("1x1", lambda: np.zeros((1, 1, 3), np.uint8)),
        ("1x1x1", lambda: np.zeros((1, 1, 1), np.uint8)),
        ("4-D", lambda: np.zeros((2, 60, 60, 3), np.uint8)),
        ("1-D", lambda: np.zeros(300, np.uint8)),
        ("0-D", lambda: np.uint8(7)),
        ("5 channels", lambda: np.zeros((60, 60, 5), np.uint8)),
        ("2 channels", lambda: np.zeros((60, 60, 2), np.uint8)),
        ("gray", lambda: rng.integers(0, 255, (60, 80), dtype=np.uint8)),
        ("BGRA", lambda: rng.integers(0, 255, (60, 80, 4), dtype=np.uint8)),
        ("wide", lambda: rng.integers(0, 255, (45, int(rng.integers(2000, 6000)), 3), dtype=np.uint8)),
        ("tall", lambda: rng.integers(0, 255, (int(rng.integers(2000, 6000)), 45, 3), dtype=np.uint8)),
        ("strip", lambda: np.zeros((1, 5000, 3), np.uint8)),
        ("non-contiguous", lambda: rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)[::2, ::-2]),
        ("fortran", lambda: np.asfortranarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))),
        ("list", lambda: [[1, 2, 3]]),
        ("None", lambda: None),
        ("string", lambda: "image.jpg"),
        ("random size", lambda: rng.integers(0, 255, (int(rng.integers(1, 200)), int(rng.integers(1, 200)), 3),
                                             dtype=np.uint8)),
    ]
    for k in range(n):
        label, make = makers[k % len(makers)]
        yield "array", label, lambda make=make: detector.detect(make())


# --------------------------------------------------------------------------------------------
# the corpus run with faults
# --------------------------------------------------------------------------------------------


def corpus_faults(folder: Path) -> dict:
    """20 videos + 2 corrupt on 1 and 2 workers, a worker killed mid-video in the 2-worker run."""
    from mtcnn_lab.corpus import find_corpus, run_corpus
    from mtcnn_lab.lab.synthetic import make_synthetic_corpus

    corpus = folder / "corpus"
    make_synthetic_corpus(corpus, n_videos=20, n_frames=6, n_corrupt=2)
    items = find_corpus(corpus)
    victim = corpus / "clip007.avi"
    settings = {"backend": "numpy", "weights": "zhang2016", "root": corpus, "progress": False}
    start = time.perf_counter()
    one = run_corpus(items, folder / "one", n_workers=1, **settings)
    t_one = time.perf_counter() - start
    start = time.perf_counter()
    two = run_corpus(items, folder / "two", n_workers=2, crash_after_frames={victim: 3}, **settings)
    t_two = time.perf_counter() - start

    def files(out: Path) -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in out.glob("*.avi.json")}

    victim_row = next(r for r in two if Path(r["item"]) == victim.resolve())
    leftovers = [p.name for p in (folder / "two").iterdir() if p.name.startswith(".")]
    errors = sorted(Path(r["item"]).name for r in two if r["status"] == "error")
    result = {"videos": 20, "corrupt": 2, "items": len(items),
              "ok_1_worker": sum(r["status"] == "ok" for r in one),
              "ok_2_workers": sum(r["status"] == "ok" for r in two),
              "errors_reported": errors,
              "errors_reported_1_worker": sorted(Path(r["item"]).name for r in one if r["status"] == "error"),
              "byte_identical_1_vs_2_workers": files(folder / "one") == files(folder / "two"),
              "result_files": len(files(folder / "two")),
              "worker_killed": victim.name, "killed_after_frames": 3,
              "killed_video_resumed_frames": victim_row["resumed"], "killed_video_status": victim_row["status"],
              "partial_files_left": leftovers, "seconds_1_worker": round(t_one, 1),
              "seconds_2_workers": round(t_two, 1)}
    result["passed"] = bool(result["byte_identical_1_vs_2_workers"] and result["ok_2_workers"] == 20
                            and errors == ["corrupt00.avi", "corrupt01.mp4"]
                            and result["errors_reported_1_worker"] == errors
                            and victim_row["status"] == "ok" and victim_row["resumed"] == 3 and not leftovers)
    return result


# --------------------------------------------------------------------------------------------
# hostile files, planted files, stale inputs and kills, through the command line as a user runs it
# --------------------------------------------------------------------------------------------

CLI = [sys.executable, "-m", "mtcnn_lab.cli"]


def _cli(args: list, cwd: Path, timeout: float = 120, env: dict | None = None) -> subprocess.CompletedProcess:
    """``mtcnn-lab ARGS`` in ``cwd`` (bytes arguments allowed), bounded by ``timeout``."""
    return subprocess.run([*CLI, *args], cwd=cwd, capture_output=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def _one_line(run: subprocess.CompletedProcess) -> bool:
    """Whether a run that failed said so in one ``error:`` line, with no traceback."""
    err = run.stderr.decode("utf-8", "replace")
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    return run.returncode in (1, 2) and bool(lines) and "Traceback" not in err and all("\n" not in x for x in lines)


def _clip(path: Path, frames: int = 24, size: tuple[int, int] = (160, 120)) -> Path:
    """A short MJPG clip of a moving face (the synthetic corpus's own generator)."""
    from mtcnn_lab.lab.synthetic import make_synthetic_corpus

    made = make_synthetic_corpus(path.parent / f".make_{path.stem}", n_videos=1, n_frames=frames, n_corrupt=0,
                                 size=size)
    made[0].replace(path)
    shutil.rmtree(made[0].parent)
    return path


def hostile_inputs(folder: Path) -> dict:
    """Files a user's disk can hold: each must be a one-line error (or a warning and a fallback), never a
    traceback or a hang. Returns per case whether it held."""
    folder.mkdir(parents=True)
    good = _clip(folder / "good.avi")
    cases: dict[str, bool] = {}
    bad_name = os.fsencode(folder) + b"/bad\xff.avi"
    shutil.copy(good, bad_name)
    cases["file name not UTF-8"] = _one_line(_cli(["detect", bad_name, "--json", "out1.json"], folder))
    (folder / "loop.avi").symlink_to(folder / "loop.avi")
    cases["self-referencing symlink"] = _one_line(_cli(["detect", "loop.avi", "--json", "out2.json"], folder))
    huge = folder / "huge.png"  # an 8x8 PNG whose header declares 30000x30000
    ok, png = cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))
    data = bytearray(png.tobytes())
    data[16:24] = struct.pack(">II", 30000, 30000)
    huge.write_bytes(bytes(data))
    cases["PNG declaring 30000x30000 pixels"] = _one_line(_cli(["detect", "huge.png", "--json", "out3.json"],
                                                               folder))
    nested = folder / "nested.json"
    nested.write_text("[" * 100000 + "]" * 100000)
    cases["manifest nested 100,000 deep"] = _one_line(_cli(["corpus", "nested.json", "--out", "c"], folder))
    models = folder / "models"
    dat_dir = models / "2.2.0/originals/lib/local/LandmarkDetector/model/mtcnn_detector"
    dat_dir.mkdir(parents=True)
    os.mkfifo(dat_dir / "PNet.dat")
    try:
        run = _cli(["models"], folder, timeout=60, env={"OPENFACE_MODELS_DIR": str(models)})
        cases["FIFO where PNet.dat belongs (models)"] = run.returncode == 1 and b"Traceback" not in run.stderr
        run = _cli(["detect", str(good), "--json", "out4.json"], folder, timeout=120,
                   env={"OPENFACE_MODELS_DIR": str(models)})
        cases["FIFO where PNet.dat belongs (detect, weights auto)"] = run.returncode == 0
    except subprocess.TimeoutExpired:
        cases.setdefault("FIFO where PNet.dat belongs (models)", False)
        cases["FIFO where PNet.dat belongs (detect, weights auto)"] = False
    from mtcnn_lab import MTCNN, detect_video

    detector = MTCNN(backend="numpy", weights="zhang2016")
    for label, line in [("per-frame file with an entry of another video", {"image": str(good), "frame": 0,
                                                                          "width": 8, "height": 8, "faces": []}),
                        ("per-frame file with an error entry", {"frame": 3, "error": "x"})]:
        jsonl = folder / f"tampered{len(cases)}.jsonl"
        list(detect_video(detector, good, every=4, jsonl=jsonl, progress=False))  # a real file with its settings
        jsonl.write_text(json.dumps(line) + "\n")
        outcome, _ = classify(lambda jsonl=jsonl: list(detect_video(detector, good, every=4, jsonl=jsonl,
                                                                      progress=False)))
        cases[label] = outcome == "clear error"
    return {"cases": cases, "held": sum(cases.values()), "tried": len(cases)}


def planted_files(folder: Path) -> dict:
    """A user's files that look like a corpus run's own, planted in its --out folder before two runs: every one
    must still be there, unchanged, after them."""
    corpus, out = folder / "corpus", folder / "out"
    corpus.mkdir(parents=True)
    out.mkdir()
    for k in range(3):
        _clip(corpus / f"clip{k}.avi", frames=8)
    header = "path,frame,timestamp_s,face,confidence,x,y,w,h\n"
    planted = {"my_faces.csv": header, ".backup_faces.csv": header, ".notes.part": "keep",
               ".x.crashed": "keep", ".other.avi.opencv-4.6.frames.jsonl": '{"frame": 0}\n',
               ".other.avi.opencv-4.6.frames.jsonl.settings.json": "{}", "clip9.avi.csv": header,
               ".clip0.avi.json.tmp": "keep"}
    for name, text in planted.items():
        (out / name).write_text(text)
    runs = [_cli(["corpus", str(corpus), "--out", str(out), "--workers", "1", "--backend", "numpy", "--every", "2"],
                 folder, timeout=300) for _ in range(2)]
    lost = sorted(n for n, text in planted.items() if not (out / n).is_file() or (out / n).read_text() != text)
    return {"planted": len(planted), "lost": lost, "runs_ok": all(r.returncode == 0 for r in runs),
            "results": len(list(out.glob("*.avi.json")))}


def stale_inputs(folder: Path) -> dict:
    """A corpus rerun after its inputs changed (a video replaced, an image overwritten in place) redoes exactly
    the changed items."""
    corpus, out = folder / "corpus", folder / "out"
    (corpus / "stills").mkdir(parents=True)
    for k in range(2):
        _clip(corpus / f"v{k}.avi", frames=6)
    capture = cv2.VideoCapture(str(corpus / "v0.avi"))
    still = capture.read()[1]
    capture.release()
    cv2.imwrite(str(corpus / "stills" / "a.png"), still)
    cv2.imwrite(str(corpus / "stills" / "b.png"), still)
    args = ["corpus", str(corpus), "--out", str(out), "--workers", "1", "--backend", "numpy", "--every", "3"]
    first = _cli(args, folder, timeout=300)
    _clip(corpus / "v1.avi", frames=9, size=(200, 150))  # another video under the same name
    cv2.imwrite(str(corpus / "stills" / "a.png"), np.zeros_like(still))  # overwritten in place
    second = _cli(args, folder, timeout=300)
    summary = json.loads((out / "summary.json").read_text())
    rows = summary["rows"] if isinstance(summary, dict) and "rows" in summary else summary
    redone = sorted(Path(r["item"]).name for r in rows if r["status"] == "ok")
    return {"runs_ok": first.returncode == 0 and second.returncode == 0, "redone": redone,
            "passed": redone == ["stills", "v1.avi"]}


def _frames_written(folder: Path, out: str) -> int:
    """How many per-frame entries the run writing ``out`` has kept so far (its hidden JSON Lines file)."""
    return sum(p.read_bytes().count(b"\n") for p in folder.glob(f".{out}.*.frames.jsonl"))


def kills(folder: Path, per_signal: int = 2) -> dict:
    """``detect --every 1`` killed (SIGINT, SIGTERM, SIGKILL of its process group) once it has kept 20, 60, ...
    frames, then rerun: each result equals an uninterrupted run's, byte for byte."""
    folder.mkdir(parents=True)
    _clip(folder / "v.avi", frames=240, size=(320, 240))
    base = ["detect", "v.avi", "--every", "1", "--workers", "2", "--backend", "numpy", "--threads", "1"]
    _cli([*base, "--json", "clean.json"], folder, timeout=300)
    clean = json.loads((folder / "clean.json").read_text())["results"]
    outcomes = []
    for k, sig in enumerate([signal.SIGINT, signal.SIGTERM, signal.SIGKILL] * per_signal):
        out, kept = f"run{k}.json", 20 + 40 * (k // 3)
        process = subprocess.Popen([*CLI, *base, "--json", out], cwd=folder, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, start_new_session=True)
        deadline = time.monotonic() + 120
        while process.poll() is None and _frames_written(folder, out) < kept and time.monotonic() < deadline:
            time.sleep(0.05)
        interrupted = process.poll() is None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        _, err = process.communicate(timeout=60)
        rerun = _cli([*base, "--json", out], folder, timeout=300)
        same = rerun.returncode == 0 and json.loads((folder / out).read_text())["results"] == clean
        outcomes.append({"signal": signal.Signals(sig).name, "after_frames": kept, "interrupted": interrupted,
                         "identical": same, "traceback": b"Traceback" in err,
                         "rerun_error": "" if same else rerun.stderr.decode("utf-8", "replace").strip()[-300:]})
    return {"runs": outcomes, "tried": len(outcomes),
            "survived": sum(o["identical"] and o["interrupted"] and not o["traceback"] for o in outcomes)}


def faults(folder: Path) -> dict:
    """The four fault checks above; ``passed`` when every one held."""
    result = {"hostile_inputs": hostile_inputs(folder / "hostile"), "planted_files": planted_files(folder / "planted"),
              "stale_inputs": stale_inputs(folder / "stale"), "kills": kills(folder / "kills")}
    result["passed"] = (result["hostile_inputs"]["held"] == result["hostile_inputs"]["tried"]
                        and not result["planted_files"]["lost"] and result["planted_files"]["runs_ok"]
                        and result["stale_inputs"]["passed"]
                        and result["kills"]["survived"] == result["kills"]["tried"])
    return result


# --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=None, help="only this many bad inputs (default 1,200)")
    parser.add_argument("--no-corpus", action="store_true", help="skip the Dask corpus fault-injection run")
    parser.add_argument("--no-faults", action="store_true",
                        help="skip the hostile files, planted files, stale inputs and kills (minutes)")
    parser.add_argument("--out", default=str(ROOT / "results" / "tables"), help="folder of reliability.json")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    total = args.sample or 1200
    shares = {"dat": 0.4, "image": 0.25, "video": 0.2, "array": 0.15}
    counts = {k: max(1, round(total * v)) for k, v in shares.items()}
    rng = np.random.default_rng(args.seed)
    outcomes: dict[tuple[str, str], int] = Counter()
    examples: dict[tuple[str, str], str] = {}
    kinds: dict[str, set] = defaultdict(set)
    crashes = []
    start = time.perf_counter()
    cv2.setLogLevel(0) if hasattr(cv2, "setLogLevel") else None
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "img").mkdir()
        (tmp / "vid").mkdir()
        generators = [dat_cases(rng, counts["dat"]), image_cases(rng, counts["image"], tmp / "img"),
                      video_cases(rng, counts["video"], tmp / "vid"), array_cases(rng, counts["array"])]
        for generator in generators:
            for category, label, call in generator:
                outcome, message = classify(call)
                outcomes[category, outcome] += 1
                kinds[category].add(label.split(":")[-1])
                examples.setdefault((category, outcome), f"{label}: {message}"[:300])
                if outcome == "crash":
                    crashes.append(f"{category} {label}: {message}")
        fuzz_seconds = time.perf_counter() - start
        corpus = None
        if not args.no_corpus:
            print("corpus run with fault injection (1 and 2 workers) ...", file=sys.stderr)
            corpus = corpus_faults(tmp / "corpus_run")
        hostile = None
        if not args.no_faults:
            print("hostile files, planted files, stale inputs and kills ...", file=sys.stderr)
            hostile = faults(tmp / "faults")
    rows = [{"category": c, "outcome": o, "count": n, "variants": sorted(kinds[c]), "example": examples[c, o]}
            for (c, o), n in sorted(outcomes.items())]
    meta = {"inputs": sum(outcomes.values()),
            "ok": sum(n for (_, o), n in outcomes.items() if o == "ok"),
            "clear_error": sum(n for (_, o), n in outcomes.items() if o == "clear error"),
            "crash": len(crashes), "crashes": crashes[:50],
            "per_category": {c: sum(n for (cc, _), n in outcomes.items() if cc == c) for c in shares},
            "seed": args.seed, "fuzz_seconds": round(fuzz_seconds, 1), "corpus_fault_injection": corpus,
            "faults": hostile,
            "outcomes": "ok: returned; clear error: MtcnnLabError with a one-line message; crash: anything else"}
    paths = save_table(rows, "reliability", args.out, meta=meta)
    for row in rows:
        print(f"{row['category']:6s} {row['outcome']:12s} {row['count']:5d}")
    print(f"{meta['inputs']} bad inputs: {meta['ok']} ok, {meta['clear_error']} clear errors, "
          f"{meta['crash']} crashes ({fuzz_seconds:.0f} s)")
    if corpus is not None:
        print(f"corpus: {corpus}")
    if hostile is not None:
        print(f"hostile files held {hostile['hostile_inputs']['held']}/{hostile['hostile_inputs']['tried']}; planted "
              f"{hostile['planted_files']['planted']}, lost {hostile['planted_files']['lost']}; stale inputs redone "
              f"{hostile['stale_inputs']['redone']}; kills survived {hostile['kills']['survived']}/"
              f"{hostile['kills']['tried']}")
    print(f"wrote {paths['json']}")
    for crash in crashes[:20]:
        print(f"CRASH {crash}", file=sys.stderr)
    failed = (bool(crashes) or (corpus is not None and not corpus["passed"])
              or (hostile is not None and not hostile["passed"]))
    return 1 if failed else 0


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
