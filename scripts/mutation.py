"""Mutation testing of the core with mutmut (pinned in the dev extra), the fast unit tests only.

For each target module, a throwaway copy of ``mtcnn_lab/``, ``tests/`` and ``pyproject.toml`` is made
in a temporary folder, mutmut mutates that one module and runs the module's fast tests against each
mutant (only the tests that reach the mutated function). ``results/tables/mutation.json|csv`` get the
score per module and every surviving mutant (its diff) with the reason it survives, from
:data:`SURVIVOR_REASONS`; a survivor without a reason is listed as ``unexplained``.

mutmut 3 does not mutate decorated functions, so the numba kernels (``@njit``: the resize taps, NMS's
greedy loop, the proposal scan, the crop loop) are not mutated; they are checked bit for bit against the
C++ dumps and OpenFace's loop re-stated in the tests (``tests/test_resize.py``, ``tests/test_boxes.py``).

Usage: ``.venv/bin/python scripts/mutation.py [--module mtcnn_lab/cascade/boxes.py ...]`` (default: all).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mtcnn_lab.io.tables import save_table  # noqa: E402

try:
    from mutmut.stats import status_by_exit_code
except ImportError:  # the dev extra pins it
    sys.exit("error: mutation testing needs mutmut: .venv/bin/pip install -e '.[dev]'")

#: The modules mutated and the fast unit tests (no ../shared needed) run against their mutants.
#: ``cascade/stages.py`` is checked with a scripted backend whose net outputs are written by hand
#: (``tests/test_stages_units.py``), not with the detector tests on real nets.
TARGETS: dict[str, list[str]] = {
    "mtcnn_lab/cascade/boxes.py": ["tests/test_boxes.py", "tests/test_cascade_units.py"],
    "mtcnn_lab/cascade/pyramid.py": ["tests/test_cascade_units.py", "tests/test_resize.py"],
    "mtcnn_lab/cascade/proposals.py": ["tests/test_cascade_units.py"],
    "mtcnn_lab/cascade/crops.py": ["tests/test_cascade_units.py", "tests/test_resize.py"],
    "mtcnn_lab/cascade/stages.py": ["tests/test_stages_units.py", "tests/test_batch_invariance.py"],
    "mtcnn_lab/cascade/resize.py": ["tests/test_resize.py", "tests/test_cascade_units.py"],
    "mtcnn_lab/params.py": ["tests/test_cascade_units.py"],
    "mtcnn_lab/weights/dat.py": ["tests/test_weights.py"],
    "mtcnn_lab/io/decode/profiles.py": ["tests/test_decode.py"],
}

#: mutmut's outcomes that count as the tests catching the mutant.
KILLED = ("killed", "timeout", "segfault", "caught by type check")

#: Why a surviving mutant is equivalent (gives the same results): ``(mutant name pattern, diff pattern,
#: reason)``; a survivor matches the first entry whose two regular expressions both match.
SURVIVOR_REASONS: list[tuple[str, str, str]] = [
    ("", r"reshape\(-2, ", "numpy's reshape takes any negative size as 'infer this dimension': the same array"),
    ("", r"errstate\(", "np.errstate only silences floating-point warnings: the same values"),
    ("", r'kind="STABLE"', "numpy reads the sort kind case-insensitively: still the stable sort"),
    ("_integer_rects", "", "rounding a float32 value to an integer gives the same integer in float32 and in double, "
                           "and the integers are only used exactly afterwards (as int or float32)"),
    ("x_nms_", r"boxes\.dtype (not )?in", "the kernel picks the same boxes for every box dtype; the conversion only "
                                          "limits the compiled versions numba keeps"),
    ("", r"strict=(None|False)|, \)\]|\], \)\)|zip\(.*, \):", "the zipped lists have one entry per scale, image or "
                                                            "group by construction: strict changes nothing"),
    ("stages", r"params\.nms_(per_scale|pyramid|rnet), \)", "nms's mode defaults to \"union\": the same call"),
    ("x__across_scales_|x_rnet_refine_", r"add1=None", "None is false, like False: no +1"),
    ("stages", r"\[:, 2:7\]|\[:, 11:17\]|\[keep, 2:7\]|heat\[:3\]|heat\[2:7\]",
     "the slice ends past the last row or column read: two logits, four offsets, 16 ONet outputs"),
    ("x__joined_", r"and False", "np.concatenate of one array is a copy of it: the same values"),
    ("x_call_groups_", r"total = limit \+ 2", "any start above the limit opens the first group: the same groups"),
    ("x_run_cascade_batch_", r"\"rnet\"\], 7,", "only images without RNet crops get this empty array, whose width "
                                               "nothing reads"),
    ("x_crop_boxes_", r"SPLIT_MIN|half = ", "where the boxes are split between the two threads; every crop is the "
                                            "same either way (tests/test_cascade_units.py)"),
    ("x_pyramid_scales_", r"min_dim <", "a shorter side below min_face gives no level by OpenFace's formula too; the "
                                        "early return only avoids log(0) where OpenFace throws"),
    ("x_pnet_proposals_", r"asarray\(regression", "the kernel stores the offsets in float32 arrays: float64 offsets "
                                                  "round the same way"),
    ("weights.dat", r'struct\.pack\("<I', "unsigned and signed little-endian 32-bit packing give the same bytes for "
                                          "the non-negative counts and type codes written"),
    ("weights.dat", r"ascontiguousarray\([^)]*, (None)?\)", "NetSpec layers hold float32 arrays, so the cast "
                                                            "writes the same bytes"),
]


def _float64_by_default(diff: str) -> bool:
    """Whether the mutant only turned one ``astype(np.float64)`` into ``astype(None)`` (numpy's default: float64)."""
    old = [line[1:] for line in diff.splitlines() if line.startswith("-")]
    new = [line[1:] for line in diff.splitlines() if line.startswith("+")]
    if len(old) != 1 or len(new) != 1:
        return False
    return any(old[0][:m.start()] + "astype(None)" + old[0][m.end():] == new[0]
               for m in re.finditer(r"astype\(np\.float64\)", old[0]))


def _reason(key: str, diff: str) -> str:
    if _float64_by_default(diff):
        return "astype(None) is astype(float64): the same array"
    for name, pattern, why in SURVIVOR_REASONS:
        if re.search(name, key) and re.search(pattern, diff):
            return why
    return "unexplained"


def _mutmut(workdir: Path, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "mutmut", *args], cwd=workdir, capture_output=True, text=True)
    return done.stdout


def run_module(module: str, tests: list[str]) -> tuple[dict, list[dict]]:
    """Mutate ``module`` in a throwaway copy; its score and its survivors."""
    with tempfile.TemporaryDirectory(prefix="mtcnn-lab-mutation-") as tmp:
        work = Path(tmp)
        shutil.copytree(ROOT / "mtcnn_lab", work / "mtcnn_lab", ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copytree(ROOT / "tests", work / "tests", ignore=shutil.ignore_patterns("__pycache__"))
        config = (ROOT / "pyproject.toml").read_text() + (
            "\n[tool.mutmut]\nsource_paths = [\"mtcnn_lab\"]\n"
            f"only_mutate = [\"{module}\"]\n"
            f"pytest_add_cli_args_test_selection = {json.dumps(tests)}\n"
            "pytest_add_cli_args = [\"-p\", \"no:cacheprovider\", \"-q\", \"-x\"]\n")
        (work / "pyproject.toml").write_text(config)
        _mutmut(work, "run")
        meta = json.loads((work / "mutants" / f"{module}.meta").read_text())["exit_code_by_key"]
        status = {key: status_by_exit_code[code] for key, code in meta.items()}
        killed = [k for k, v in status.items() if v in KILLED]
        survivors = []
        for key in sorted(k for k, v in status.items() if v not in KILLED):
            diff = [line for line in _mutmut(work, "show", key).splitlines()
                    if re.match(r"^[-+] ", line)]
            text = "\n".join(diff)
            reason = _reason(key, text)
            if status[key] != "survived":
                reason = f"{status[key]}: no fast test reaches this function"
            survivors.append({"module": module, "mutant": key, "status": status[key], "diff": text,
                              "reason": reason})
    total = len(meta)
    return ({"module": module, "tests": " ".join(tests), "mutants": total, "killed": len(killed),
             "survived": len(survivors), "score": len(killed) / total if total else None}, survivors)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--module", action="append", choices=sorted(TARGETS), help="only these modules")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "tables")
    args = parser.parse_args()
    rows, survivors = [], []
    for module in args.module or TARGETS:
        row, lost = run_module(module, TARGETS[module])
        rows.append(row)
        survivors += lost
        print(f"{module}: {row['killed']}/{row['mutants']} killed ({row['score']:.1%}), "
              f"{sum(s['reason'] == 'unexplained' for s in lost)} survivors unexplained", flush=True)
    for row in rows:
        lost = [s for s in survivors if s["module"] == row["module"]]
        row["equivalent"] = sum(s["reason"] != "unexplained" for s in lost)
        row["unexplained"] = len(lost) - row["equivalent"]
        row["score_without_equivalent"] = (row["killed"] / (row["mutants"] - row["equivalent"])
                                           if row["mutants"] > row["equivalent"] else None)
    previous = args.out / "mutation.json"
    if args.module and previous.exists():  # keep the other modules' rows of the last full run
        old = json.loads(previous.read_text())
        rows = [r for r in old["rows"] if r["module"] not in args.module] + rows
        survivors = [s for s in old["meta"]["survivors"] if s["module"] not in args.module] + survivors
        rows.sort(key=lambda r: list(TARGETS).index(r["module"]))
    total = sum(r["mutants"] for r in rows)
    killed = sum(r["killed"] for r in rows)
    save_table(rows, "mutation", args.out, meta={
        "tool": "mutmut", "score": killed / total if total else None, "mutants": total, "killed": killed,
        "survivors": survivors, "not_mutated": "functions with decorators (the @njit kernels): mutmut 3 skips them"})
    print(f"all: {killed}/{total} killed ({killed / total:.1%}); wrote {args.out / 'mutation.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
