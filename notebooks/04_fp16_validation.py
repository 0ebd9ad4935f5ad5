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
# # 04 · FP16 validation: which nets may run in half precision
#
# *For engineers choosing a precision for a GPU or the Neural Engine: which nets may run in FP16.*
#
# The Neural Engine and most GPUs run FP16 fastest, but the detector must still find the same faces.
# Two precision policies are measured against the FP32 numpy reference:
# * **`fp16`**: RNet and ONet in FP16, PNet in FP32 (the default of every FP16 backend),
# * **`fp16-all`**: all three nets in FP16 (what the Neural Engine could run whole).
#
# Each policy runs on ONNX Runtime (FP16 models) and as the numpy FP16 emulation (weights, input and
# every layer's output rounded to float16). The saved Core ML programs run too: through Core ML on macOS,
# elsewhere through mtcnn-lab's MIL executor (`mtcnn_lab/nets/mil.py`), which runs the same `.mlpackage`
# files op by op with every activation stored in float16. We compare per layer, then end to end on the
# data set, and finally show *why* all-FP16 loses agreement: PNet's box regression.

# %% tags=["parameters"]
quick = False
results_dir = None  # None: results/ of the project (found from the working directory, as data/manifest.json)
manifest = None  # data set manifest; None: data/manifest.json (OpenFace's samples in ../shared)

# %%
import contextlib
import io
import tempfile
import time

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown, display

from mtcnn_lab import MTCNN, MtcnnLabError
from mtcnn_lab.backends.base import PRECISIONS
from mtcnn_lab.backends.coreml import CoreMLBackend, coreml_available
from mtcnn_lab.backends.numpy import NumpyBackend
from mtcnn_lab.backends.select import make_backend
from mtcnn_lab.io.tables import save_table
from mtcnn_lab.lab import figures, paper_figures
from mtcnn_lab.lab.agreement import agreement, pnet_offset_shift, summarise_agreement
from mtcnn_lab.lab.conclusions import fp16_conclusion
from mtcnn_lab.lab.dataset import load_manifest
from mtcnn_lab.lab.layers import backend_layer_differences, cascade_net_inputs
from mtcnn_lab.lab.project import results_folder
from mtcnn_lab.weights.netspec import NET_NAMES
from mtcnn_lab.weights.sets import load_weights

results = results_folder(results_dir)
weights = load_weights("zhang2016")  # bit-identical to OpenFace's .dat (notebook 01)
dataset = load_manifest(manifest, quick=6 if quick else None)
images = {item.id: image for item, image in dataset.iter_images()}
coreml_ok, coreml_reason = coreml_available()
print(f"{len(images)} images of {dataset.name}")
print("Core ML:", coreml_reason if coreml_ok else f"not here ({coreml_reason}); the saved programs are executed "
      "by mtcnn-lab's MIL executor")
print("FP16 nets per policy:", {p: nets for p, nets in PRECISIONS.items() if p != "fp32"})

# %% [markdown]
# ## 1 · Per layer: how large is FP16 rounding?
# Real inputs of each net (PNet: the largest pyramid level; RNet/ONet: the crops reaching them) from
# a few images, every net in FP16, every layer compared with the FP32 reference.

# %%
probe = [cascade_net_inputs(images[key], weights, max_crops=32) for key in list(images)[: 1 if quick else 3]]
fp16_backends = {"onnx-fp16-all": make_backend("onnx-fp16-all", weights),
                 "numpy-fp16-all": NumpyBackend(weights, "fp16-all")}
layer_rows = []
for name, backend in fp16_backends.items():
    for net in NET_NAMES:
        tables = [backend_layer_differences(backend, weights, net, b[net]) for b in probe if len(b[net])]
        for layer in tables[0]:
            layer_rows.append({"variant": name, "backend": backend.name, "net": net, "layer": layer,
                               "max_abs": max(t[layer]["max_abs"] for t in tables),
                               "mean_abs": float(np.mean([t[layer]["mean_abs"] for t in tables]))})
save_table(layer_rows, "04_fp16_layers", results / "tables", meta={"images": list(images)[: len(probe)]})
for r in layer_rows:
    if r["layer"] == "output":
        print(f"{r['variant']:15s} {r['net']} output: max |Δ| {r['max_abs']:.2e}, mean |Δ| {r['mean_abs']:.2e}")

# %%
with figures.paper_style():
    fig = paper_figures.layer_differences(layer_rows, "variant", "|Δ| from FP32 reference", ("max_abs", "mean_abs"),
                                          colors={name: figures.COLORS[name.split("-")[0]] for name in fp16_backends})
    figures.save_figure(fig, "04_fp16_layers", results / "figures")
    plt.show()

# %% [markdown]
# ## 2 · End to end: the same faces as FP32?
# Every variant detects faces on every image; its faces are matched to the FP32 reference's by IoU.
# `onnx` (FP32) is the control: what a different FP32 runtime alone changes.

# %%
# variant -> precision policy (PNet, RNet/ONet): fp32 all FP32; fp16 RNet/ONet FP16; fp16-all every net FP16
policies = {"onnx": "fp32", "onnx-fp16": "fp16", "onnx-fp16-all": "fp16-all", "numpy-fp16": "fp16",
            "numpy-fp16-all": "fp16-all", "coreml": "fp16", "coreml-fp16-all": "fp16-all"}
# The Core ML rows run the saved .mlpackage programs: Core ML on a Mac, elsewhere mtcnn-lab's MIL executor,
# converted for this data set's frame sizes so that every pyramid level is one the PNet program takes.
coreml_scratch = tempfile.TemporaryDirectory(prefix="mtcnn-lab-04-coreml-")
frame_sizes = sorted({(image.shape[1], image.shape[0]) for image in images.values()})
coreml_backends, coreml_error = {}, None
try:
    with contextlib.redirect_stderr(io.StringIO()):  # coremltools' per-pass progress bars
        for variant in ("coreml", "coreml-fp16-all"):
            coreml_backends[variant] = CoreMLBackend(weights, policies[variant], model_dir=coreml_scratch.name,
                                                     frame_sizes=frame_sizes, strict_shapes=True,
                                                     simulate=not coreml_ok)
except MtcnnLabError as err:
    coreml_error = str(err)
    coreml_backends = {}
executed_by = "Core ML on this Mac" if coreml_ok else "mtcnn-lab's MIL executor (mtcnn_lab/nets/mil.py)"
variants = [v for v in policies if v in coreml_backends or not v.startswith("coreml")]
print("Core ML rows:", f"run by {executed_by}" if coreml_backends else f"not run ({coreml_error})")


def detect_all(variant: str) -> tuple[dict, str, float]:
    detector = MTCNN(backend=coreml_backends.get(variant, variant), weights=weights)
    start = time.perf_counter()
    found = {key: detector.detect(image) for key, image in images.items()}
    return found, detector.backend.name, time.perf_counter() - start


reference, _, _ = detect_all("numpy")
summary_rows, image_rows, ious = [], [], {}
for variant in variants:
    found, backend_name, seconds = detect_all(variant)
    rows = [agreement(key, reference[key], found[key]) for key in images]
    policy = policies[variant]
    summary_rows.append({"variant": variant, "backend": backend_name, "policy": policy,
                         "pnet": "fp16" if policy == "fp16-all" else "fp32", "rnet_onet": policy[:4],
                         "executed_by": executed_by if variant.startswith("coreml") else "",
                         **summarise_agreement(rows),
                         "seconds": round(seconds, 1)})
    image_rows += [{"variant": variant, "image": r.image, "faces_fp32": r.faces_a, "faces": r.faces_b,
                    "matched": r.matched, "iou_min": min(r.ious, default=None),
                    "max_px_error": max(r.px_errors, default=None)} for r in rows]
    ious[variant] = np.sort([v for r in rows for v in r.ious])
save_table(summary_rows, "04_fp16_end_to_end", results / "tables",
           meta={"reference": "numpy FP32", "images": len(images), "data_set": dataset.name,
                 "coreml": f"run by {executed_by}" if coreml_backends else f"not run: {coreml_error}"})
save_table(image_rows, "04_fp16_per_image", results / "tables")
for r in summary_rows:
    print(f"{r['variant']:16s} PNet {r['pnet']}, RNet/ONet {r['rnet_onet']}: same count {r['images_same_count']}/"
          f"{r['images']}, faces {r['faces_b']}/{r['faces_a']}, IoU mean {r['iou_mean']:.5f} min {r['iou_min']:.4f}, "
          f">0.99 {r['share_iou_above_0.99']:.1%}, max px {r['max_px_error']:.2f}  ({r['seconds']} s)")

# %%
floor = 1e-5
with figures.paper_style():
    fig = paper_figures.fp16_iou(summary_rows, ious, floor)
    figures.save_figure(fig, "04_fp16_iou", results / "figures")
    plt.show()
print(f"1 − IoU below {floor:g} (identical boxes) is drawn at {floor:g}")

# %% [markdown]
# ## 3 · Why all-FP16 loses agreement: PNet's box regression
# `numpy-fp16-all` and `numpy-fp16` differ only in PNet's precision. PNet's proposals are
# *integers*: each selected cell's box is shifted by regression offsets times its size, squared,
# and truncated to whole pixels. FP16 changes the offsets by ~1e-3, a fraction of a pixel, but a
# fraction is enough to cross an integer boundary; RNet then sees a crop shifted by a pixel and
# scores it differently, which can change NMS decisions.
#
# To isolate this, stage 1 runs with the FP32 face scores (so the same cells survive, in the same
# order) and the FP16 offsets only, and the integer proposals are compared with FP32's.

# %%
fp32_numpy, fp16_numpy = NumpyBackend(weights), NumpyBackend(weights, "fp16-all")
shift_rows = []
for key, image in images.items():
    s = pnet_offset_shift(image, fp32_numpy, fp16_numpy)
    shift_rows.append({"image": key, "proposals": s["proposals"], "moved": s["moved"],
                       "max_shift_px": int(s["shifts"].max(initial=0)), "offsets_max_abs": s["offsets_max_abs"],
                       "proposals_fp16": s["proposals_other"], "identical_fp16": s["identical"]})
save_table(shift_rows, "04_pnet_offset_shift", results / "tables")
proposals, moved = sum(r["proposals"] for r in shift_rows), sum(r["moved"] for r in shift_rows)
identical = sum(r["identical_fp16"] for r in shift_rows)
print(f"PNet proposals (FP32): {proposals}; moved by FP16 offsets alone: {moved} ({moved / proposals:.1%}), "
      f"by at most {max(r['max_shift_px'] for r in shift_rows)} px; FP16 offsets differ by at most "
      f"{max(r['offsets_max_abs'] for r in shift_rows):.1e}")
print(f"all-FP16 stage 1 reproduces {identical}/{proposals} FP32 proposals exactly "
      f"({sum(r['moved'] > 0 for r in shift_rows)}/{len(shift_rows)} images have a moved proposal)")

# %% [markdown]
# Where end-to-end results differ, PNet is the cause: the images on which `numpy-fp16-all` departs
# from FP32 (another face count or an IoU below 0.99), next to the same images with PNet in FP32.

# %%
per_image = {(r["variant"], r["image"]): r for r in image_rows}
moved_on = {r["image"]: r["moved"] for r in shift_rows}


def departs(r: dict) -> bool:
    return r["faces"] != r["faces_fp32"] or r["matched"] < r["faces_fp32"] or (r["iou_min"] or 1.0) < 0.99


culprits = [key for key in images if departs(per_image[("numpy-fp16-all", key)])]
for key in culprits:
    a, b = per_image[("numpy-fp16-all", key)], per_image[("numpy-fp16", key)]
    print(f"{key:28s} FP32 {a['faces_fp32']} faces | all-FP16 {a['faces']}, min IoU {a['iou_min'] or 0:.3f} | "
          f"PNet FP32 {b['faces']}, min IoU {b['iou_min'] or 0:.3f} | PNet proposals moved: {moved_on[key]}")
if not culprits:
    print("no image departs from FP32 under all-FP16 in this run")

# %%
rescued = [key for key in culprits if not departs(per_image[("numpy-fp16", key)])]
display(Markdown(fp16_conclusion(summary_rows, len(images), dataset.name, culprits, rescued, moved, proposals, quick,
                                 coreml_error or coreml_reason)))
