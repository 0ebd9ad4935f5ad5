# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: tags,-all
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 06 · Backend benchmarks
#
# *For engineers choosing a backend and a thread count: how fast each one is here, and where the time goes.*
#
# Every backend available on this machine on the same frames, with 1 and 2 threads: latency
# (median and p95 of the per-frame medians), frames per second and the share of each cascade stage,
# next to C++ OpenFace's own timings of those frames (the reference JSON, 1 thread, same kind of
# machine) and pymtcnn when it is installed. On macOS the Core ML compute units are swept (ALL,
# CPU_AND_NE, CPU_AND_GPU, CPU_ONLY) to show the Neural Engine's effect.

# %% tags=["parameters"]
quick = False
results_dir = None  # None: results/ of the project (found from the working directory, as data/manifest.json)
manifest = None  # None: data/manifest.json (or $MTCNN_LAB_MANIFEST)
repeats = 5
thread_counts = [1, 2]

# %%
import importlib.util
import json
import platform

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown, display

from mtcnn_lab import MTCNN
from mtcnn_lab.backends.select import backend_report
from mtcnn_lab.io.tables import save_table
from mtcnn_lab.lab import figures, paper_figures
from mtcnn_lab.lab.bench.system import machine_info
from mtcnn_lab.lab.bench.timing import benchmark_detector
from mtcnn_lab.lab.dataset import load_manifest
from mtcnn_lab.lab.efficiency import efficiency_markdown, efficiency_table, measure_efficiency
from mtcnn_lab.lab.project import results_folder
from mtcnn_lab.weights.sets import load_weights

results = results_folder(results_dir)
if quick:
    repeats, thread_counts = 2, [1]
dataset = load_manifest(manifest, quick=6 if quick else None)
images = {item.id: item.load() for item in dataset.items}
weights = load_weights("zhang2016")
report = backend_report(weights)
available = [r["backend"] for r in report if r["available"]]
machine = machine_info()
print(f"{len(images)} frames from {dataset.name}; {machine['cpu_count']} CPUs, {machine['processor']}")
for r in report:
    print(f"{r['backend']:16s} {'available' if r['available'] else 'not here: ' + r['reason']}")

# %% [markdown]
# ## Latency and throughput
# Backends with their own thread pool (onnxruntime) are built with that many threads; numpy, OpenCV
# and torch are pinned to it while timing.

# %%
measured = [b for b in available if not b.startswith("coreml")]
if quick:
    measured = [b for b in measured if b in ("onnx", "numpy")]
runs = []
for threads in thread_counts:
    for name in measured:
        with MTCNN(backend=name, weights=weights, threads=threads) as detector:
            run = benchmark_detector(detector, images, repeats=repeats, threads=threads)
        runs.append({"backend": name, **{k: v for k, v in run.items() if k != "per_image"}})
        print(f"{name:16s} {threads} thread(s): {run['sum_of_medians_ms']:8.1f} ms summed, "
              f"median {run['median_ms']:6.1f} ms, p95 {run['p95_ms']:6.1f} ms, {run['fps']:6.1f} FPS")

cpp_times = [item.cpp["timing_ms"]["median_1thread"] for item in dataset.items
             if item.cpp and "timing_ms" in item.cpp]
cpp_row = None
if len(cpp_times) == len(images):
    t = np.array(cpp_times)
    cpp_row = {"backend": "C++ OpenFace", "threads": 1, "sum_of_medians_ms": float(t.sum()),
               "median_ms": float(np.median(t)), "p95_ms": float(np.percentile(t, 95)),
               "fps": float(len(t) / t.sum() * 1e3)}
    print(f"C++ OpenFace 1 thread: {t.sum():.1f} ms summed (reference JSON)")
else:
    print("no C++ timings for these frames in the reference")
save_table(runs + ([cpp_row] if cpp_row else []), "06_latency", results / "tables",
           meta={"machine": machine, "repeats": repeats, "frames": len(images), "dataset": dataset.name})

# %% [markdown]
# ## pymtcnn
# pymtcnn 1.2.0 is the other Python port of OpenFace's MTCNN; the speed issue's harness
# (`benchmarks/`) runs it in its own environment. Here it is only timed when it is installed.

# %%
have_pymtcnn = importlib.util.find_spec("pymtcnn") is not None
print("pymtcnn:", "installed" if have_pymtcnn else "not installed in this environment: not measured here")

# %% [markdown]
# ## Core ML compute units (macOS only)

# %%
coreml_rows = []
if platform.system() == "Darwin" and "coreml" in available:
    from mtcnn_lab.backends.coreml import CoreMLBackend

    for units in ("ALL", "CPU_AND_NE", "CPU_AND_GPU", "CPU_ONLY"):
        for precision in ("fp16-all", "fp16", "fp32"):
            with MTCNN(backend=CoreMLBackend(weights, precision=precision, compute_units=units),
                       weights=weights) as detector:
                run = benchmark_detector(detector, images, repeats=repeats)
            coreml_rows.append({"compute_units": units, "precision": precision,
                                **{k: v for k, v in run.items() if k != "per_image"}})
    save_table(coreml_rows, "06_coreml_compute_units", results / "tables")
else:
    print(f"This is {platform.system()}, not macOS: Core ML cannot predict here, so the compute-unit sweep "
          "(ALL, CPU_AND_NE, CPU_AND_GPU, CPU_ONLY) was not run. Run this notebook on a Mac to fill it in.")

# %% [markdown]
# ## Efficiency: each net's share of the machine's float32 GEMM peak
# The multiply-accumulates of every net call (pyramid level sizes, crop counts from the trace) over the
# seconds the cascade spent in that net, against a GEMM measured in the same run at the same thread
# count (`mtcnn_lab.lab.efficiency`). Rows `here` are measured now with the default backend; the other rows
# come from `benchmarks/efficiency.py`, which runs every ISA level this CPU can emulate
# (`results/bench/efficiency.json`).

# %%
eff_runs = [measure_efficiency(images, "auto", threads, repeats=2 if quick else 3, weights=weights)
            for threads in thread_counts]
eff_levels = {"here": {"runs": eff_runs}}
eff_file = results / "bench" / "efficiency.json"
if eff_file.exists():
    eff_levels.update(json.loads(eff_file.read_text())["levels"])
eff_rows = efficiency_table(eff_levels)
save_table(eff_rows, "06_efficiency", results / "tables", meta={"machine": machine, "frames": len(images)})
display(Markdown(efficiency_markdown(eff_rows)))

# %% [markdown]
# ## Figures

# %%
with figures.paper_style():
    fig = paper_figures.latency(runs, cpp_times if cpp_row else None)
    figures.save_figure(fig, "06_latency", results / "figures")
    plt.show()

# %%
from mtcnn_lab.lab.conclusions import benchmark_conclusion

display(Markdown(benchmark_conclusion(runs, cpp_row, len(images), machine["cpu_count"], bool(coreml_rows), have_pymtcnn,
                                      quick)))
