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
# # 05 · End to end against C++ OpenFace: detections and IoU per backend
#
# *For researchers: does mtcnn-lab give C++ OpenFace's face boxes on my data, and with which backends?*
#
# Every backend that runs here (numpy reference, torch, ONNX Runtime, and the FP16 policies
# `onnx-fp16` and `numpy-fp16`: RNet/ONet in FP16, PNet in FP32) detects faces on the frames of the
# evaluation set, and each face is matched with C++ OpenFace's by IoU. We report detection agreement
# (same number of faces, every face matched), IoU, and how far box centres and sizes move, per
# backend and per video as in a paper's table, show overlays, and end with an interactive viewer.

# %% tags=["parameters"]
quick = False
results_dir = None  # None: results/ of the project (found from the working directory, as data/manifest.json)
manifest = None  # evaluation set (data/README.md); None: $MTCNN_LAB_MANIFEST, else data/manifest.json
backends = ["numpy", "torch", "onnx", "openvino", "onnx-fp16", "numpy-fp16"]  # unavailable ones are skipped
weights = "zhang2016"  # bit-identical to OpenFace's .dat files (notebook 01)
min_iou = 0.3  # faces pair up when their IoU is at least this

# %%
import time

import matplotlib.pyplot as plt
from IPython.display import Markdown, display

from mtcnn_lab.detector import MTCNN
from mtcnn_lab.errors import MtcnnLabError
from mtcnn_lab.io.tables import save_table
from mtcnn_lab.lab import figures, paper_figures
from mtcnn_lab.lab.conclusions import number, parity_conclusion
from mtcnn_lab.lab.dataset import load_manifest
from mtcnn_lab.lab.parity import (
    compare_with_cpp,
    format_iou_cell,
    markdown_table,
    per_face_rows,
    pivot_summary,
    summarise_comparisons,
)
from mtcnn_lab.lab.project import results_folder

results = results_folder(results_dir)
dataset = load_manifest(manifest, quick=6 if quick else None)
frames = [(item, image) for item, image in dataset.iter_images() if item.has_reference]
print(f"{dataset.name}: {len(frames)} of {len(dataset)} items have C++ faces; groups: "
      + ", ".join(f"{g} ({len(m)})" for g, m in dataset.by_group().items()))

# %% [markdown]
# ## Detect with every backend
# Backends that cannot be built here (a missing runtime, no GPU) are skipped with the reason.

# %%
detections, seconds, skipped = {}, {}, {}
for name in backends:
    try:
        detector = MTCNN(backend=name, weights=weights)
    except MtcnnLabError as err:
        skipped[name] = str(err)
        print(f"skip {name}: {err}")
        continue
    start = time.perf_counter()
    detections[name] = [detector.detect(image) for _, image in frames]
    seconds[name] = time.perf_counter() - start
    print(f"{name:11s} {sum(len(d) for d in detections[name]):3d} faces in {seconds[name]:.1f} s")
comparisons = [compare_with_cpp(item.id, det, item.cpp_faces, backend=name, group=item.group, min_iou=min_iou)
               for name, per_frame in detections.items() for (item, _), det in zip(frames, per_frame, strict=True)]

# %% [markdown]
# ## Summary per backend
# IoU over matched faces; `dx, dy` move the box centre, `dw, dh` its size (Python − C++, pixels).

# %%
summary = [{**row, "seconds": seconds[row["backend"]]} for row in summarise_comparisons(comparisons)]
save_table(summary, "05_summary", results / "tables",
           meta={"dataset": dataset.name, "weights": weights, "min_iou": min_iou, "quick": quick, "skipped": skipped})


display(Markdown(
    "| backend | images agree | faces C++ / Python / matched | IoU mean | median | min | > 0.99 | max 1 − IoU "
    "| centre max \\|Δ\\| px | size max \\|Δ\\| px | seconds |\n|" + "---|" * 11 + "\n" + "\n".join(
        f"| {r['backend']} | {r['images_agree']}/{r['images']} | {r['faces_cpp']} / {r['faces_python']} / "
        f"{r['matched']} | {number(r['iou_mean'], '.7f')} | {number(r['iou_median'], '.7f')} "
        f"| {number(r['iou_min'], '.7f')} "
        f"| {number(r['share_iou_above_0.99'], '.0%')} | {number(r['one_minus_iou_max'], '.1e')} "
        f"| {number(r['centre_max_abs'], '.1e')} | {number(r['size_max_abs'], '.1e')} | {r['seconds']:.1f} |"
        for r in summary)))

# %% [markdown]
# ## Per video
# Cells: IoU mean / min over the group's matched faces (agreeing images / images).

# %%
per_group = summarise_comparisons(comparisons, by=("group", "backend"))
per_group += [{"group": "all", **row} for row in summarise_comparisons(comparisons)]
save_table(pivot_summary(per_group, values=("iou_mean", "iou_min", "images_agree", "matched")), "05_per_video",
           results / "tables", meta={"long": per_group})
display(Markdown(markdown_table(per_group, cell=lambda row: format_iou_cell(row, 7))))

# %% [markdown]
# ## Per face

# %%
faces = per_face_rows(comparisons)
save_table(faces, "05_per_face", results / "tables")
unmatched = [f for f in faces if not f["matched"]]
print(f"{len(faces)} face rows, {len(unmatched)} unmatched" + "".join(
    f"\n  {f['backend']} {f['image']}: C++ face {f['cpp_face']}, Python face {f['python_face']}" for f in unmatched))

# %% [markdown]
# ## Overlays: C++ (wide, orange) and Python (dashed, blue)
# One frame per group, the one with the most C++ faces; Python is the first backend.

# %%
shown = list(detections)[0]
index = {item.id: k for k, (item, _) in enumerate(frames)}
best = {}
for item, _ in frames:
    if item.group not in best or len(item.cpp_faces) > len(best[item.group].cpp_faces):
        best[item.group] = item
panels = sorted(best.values(), key=lambda item: -len(item.cpp_faces))[:6]
by_image = {(c["backend"], c["image"]): c for c in comparisons}
titles = {}
for item in panels:
    c = by_image[(shown, item.id)]
    ious = [f["iou"] for f in c["faces"] if f["matched"]]
    titles[item.id] = (f"{item.id}\nC++ {c['cpp_faces']} · {shown} {c['python_faces']} · min IoU "
                       f"{min(ious) if ious else float('nan'):.7f}")
with figures.paper_style():
    fig = paper_figures.face_overlays([(frames[index[item.id]][1], detections[shown][index[item.id]], item.cpp_faces,
                                        titles[item.id]) for item in panels], python_label=f"Python ({shown})")
    figures.save_figure(fig, "05_overlays", results / "figures")
    plt.show()

# %% [markdown]
# ## IoU per backend
# Sorted 1 − IoU of every matched face on a log axis (faces with IoU exactly 1 are drawn at the
# floor), and the largest of |dx|, |dy|, |dw|, |dh| per face. The FP32 backends sit at float32
# rounding of the box arithmetic, the FP16 policies about three decades higher; the dotted line
# marks IoU = 0.99.

# %%
with figures.paper_style():
    fig = paper_figures.iou_per_backend(faces, list(detections))
    figures.save_figure(fig, "05_iou_per_backend", results / "figures")
    plt.show()

# %% [markdown]
# ## Viewer
# Step through the evaluated frames (numbered from 1, as OpenFace numbers frames; faces from 0, as its
# `face_id`); pick a backend; zoom on a face to see its pixels; toggle C++ and Python faces. The readout
# lists each matched pair's IoU. Where widgets do not render (GitHub, a notebook opened without a kernel)
# a picture of the first frame stands in. Your own run: `FrameViewer.from_files("video.mp4", "ours.json",
# "cpp.json")`.

# %%
from mtcnn_lab.lab.widgets import FrameViewer

viewer = FrameViewer([(item.id, image) for item, image in frames], detections,
                     cpp=[item.cpp_faces for item, _ in frames], min_iou=min_iou)
display(viewer)

# %%
display(Markdown(parity_conclusion(summary, len(frames), len({item.group for item, _ in frames}),
                                   sum(len(item.cpp_faces) for item, _ in frames), skipped, quick)))
