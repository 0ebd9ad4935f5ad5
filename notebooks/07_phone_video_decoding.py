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
# # 07 · Phone video: how the decoder changes OpenFace's results
#
# *For researchers with phone video: how must it be decoded to get the faces OpenFace finds, and which results can be
# compared?*
#
# C++ OpenFace reads videos with the `cv::VideoCapture` of the OpenCV it was built with, and OpenCV
# versions decode phone video differently: OpenCV 4.x converts YUV to BGR with BT.601 whatever the
# stream's BT.709 tag, OpenCV 4.0–4.4 ignore the display matrix that phones use for portrait video, and
# OpenCV 4.6 applies it the wrong way round (upside down). Each decode profile of mtcnn-lab reproduces
# one of these decoders (`mtcnn-lab probe` and the README's "Decoding" section). Here one phone-like
# clip (portrait, H.264, BT.709, stored 1920×1080 with a −90° display matrix, made from the OpenFace
# samples) is detected under every profile, and the faces are compared with the upright decode's,
# in the upright picture's coordinates.

# %% tags=["parameters"]
quick = False
results_dir = None  # None: results/ of the project (found from the working directory, as data/manifest.json)
manifest = None  # evaluation set (data/README.md); its root holds the OpenFace samples the clip is made of
backend = "auto"
weights = "zhang2016"  # bit-identical to OpenFace's .dat files (notebook 01)
frames = 60  # length of the clip, in frames at 30 fps
every = 2  # detect every N-th frame
baseline = "upright"  # the profile the others are compared with
profiles = None  # decode profiles to run (None: all), e.g. -p profiles '["opencv-4.6", "upright"]'

# %%
import shutil
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
from IPython.display import Markdown, display

from mtcnn_lab.detector import MTCNN
from mtcnn_lab.io.decode.profiles import PROFILE_NAMES, PROFILES
from mtcnn_lab.io.tables import save_table
from mtcnn_lab.lab import figures, paper_figures
from mtcnn_lab.lab.bench_clips import phone_clip
from mtcnn_lab.lab.conclusions import decoder_conclusion, number
from mtcnn_lab.lab.dataset import load_manifest
from mtcnn_lab.lab.decoders import compare_profiles_table, detect_each_profile
from mtcnn_lab.lab.project import results_folder

results = results_folder(results_dir)
dataset = load_manifest(manifest)
n_frames = 12 if quick else frames
work = Path(tempfile.mkdtemp(prefix="mtcnn-lab-07-"))
clip = phone_clip(dataset.root, work / "portrait_h264_rot-90.mp4", n_frames, display_rotation=-90)
detector = MTCNN(backend=backend, weights=weights)
chosen = list(dict.fromkeys([*(PROFILE_NAMES if profiles is None else profiles), baseline]))
runs = detect_each_profile(detector, clip, chosen, every=every)
shutil.rmtree(work)  # the clip is made of OpenFace's samples: it is not kept
print(f"{clip.name}: {n_frames} frames, backend {detector.backend.name}")

# %% [markdown]
# ## How each profile decodes the clip

# %%
display(Markdown("| profile | what it reproduces | rotation applied | upright |\n|---|---|---|---|\n" + "\n".join(
    f"| {name} | {PROFILES[name].summary} | {run.record['rotation_applied']}° | {run.record['upright']} |"
    for name, run in runs.items())))

# %% [markdown]
# ## Faces found under each profile, against the upright decode

# %%
rows = compare_profiles_table(runs, baseline)
save_table(rows, "07_decode_profiles", results / "tables",
           meta={"clip": clip.name, "frames": n_frames, "every": every, "baseline": baseline,
                 "backend": detector.backend.name, "weights": weights, "quick": quick,
                 "decoding": {name: {**run.record, "path": clip.name} for name, run in runs.items()}})
display(Markdown("| profile | picture | faces / baseline | frames same count | matched | IoU mean | IoU min "
                 "| max \\|Δ\\| px |\n|" + "---|" * 8 + "\n" + "\n".join(
    f"| {r['profile']} | {r['picture']} | {r['faces']} / {r['baseline_faces']} | {r['frames_same_count']}/"
    f"{r['frames']} | {r['matched']} | {number(r['iou_mean'], '.4f')} | {number(r['iou_min'], '.4f')} "
    f"| {number(r['max_px'], '.1f')} |" for r in rows)))

# %% [markdown]
# ## The first frame as each decoder returns it
# Boxes as found in that picture; an upside-down or sideways picture is what that OpenFace build saw.

# %%
with figures.paper_style():
    fig = paper_figures.decode_profiles(runs, baseline)
    figures.save_figure(fig, "07_decode_profiles", results / "figures")
    plt.show()

# %%
display(Markdown(decoder_conclusion(rows, baseline, clip.name)))
