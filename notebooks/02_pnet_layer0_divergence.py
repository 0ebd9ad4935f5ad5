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
# # 02 · PNet layer-0 divergence: what really happened
#
# *For engineers porting the detector: how a porting mistake shows in PNet's first layer, and how to tell which.*
#
# An earlier port reported that PNet's first convolution diverged from C++ OpenFace
# (**max |Δ| 8.86, mean |Δ| 0.153, channel-1 correlation −0.72** on a 384×216 input) while RNet and
# ONet matched to 1e-6, and concluded that the C++ must do something special. Here we
# 1. check the reference CNN against the C++ layer dumps on square and non-square inputs,
# 2. recompute layer 0 under every plausible porting mistake and measure each one's signature,
# 3. see which mistake has the reported signature, and why RNet/ONet could still match.

# %% tags=["parameters"]
quick = False
results_dir = None  # None: results/ of the project (found from the working directory, as data/manifest.json)
shared_dir = None  # C++ layer dumps (reference/layers) and samples; None: the shared/ folder beside the project

# %%

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown, display

from mtcnn_lab.io.images import read_image
from mtcnn_lab.io.tables import save_table
from mtcnn_lab.lab import divergence, figures, paper_figures
from mtcnn_lab.lab.layers import compare_with_cpp_layers
from mtcnn_lab.lab.project import results_folder, shared_folder
from mtcnn_lab.weights.sets import load_weights

results, shared = results_folder(results_dir), shared_folder(shared_dir)
layers_dir = shared / "reference" / "layers"
have_dumps = layers_dir.is_dir()
weights = load_weights("zhang2016")  # bit-identical to OpenFace's .dat (notebook 01)
print("C++ layer dumps:", layers_dir if have_dumps else "not available: steps 1 and 3b are skipped")

# %% [markdown]
# ## 1 · Nothing special in the C++: every layer matches
# Fed the C++ network input of each dump, the numpy reference matches every C++ layer; the
# dumped inputs include non-square ones (640×400 → 128×80, 2048×1366 → 410×274, 640×480 → 128×96).

# %%
layer_rows = []
if have_dumps:
    for image in ("sample1", "sample2", "multi_face_f140"):
        for net in ("pnet", "rnet", "onet"):
            table = compare_with_cpp_layers(weights.nets()[net], layers_dir / f"{image}_{net}.npz")
            for group, layers in table.items():
                layer_rows += [{"image": image, "net": net, "group": group, "layer": k, **v} for k, v in layers.items()]
    save_table(layer_rows, "02_reference_vs_cpp_layers", results / "tables")
    worst = max(layer_rows, key=lambda r: r["max_abs"])
    l0 = [r for r in layer_rows if r["net"] == "pnet" and r["layer"] == "l00_conv"]
    print(f"{len(layer_rows)} layer comparisons; worst max |Δ| {worst['max_abs']:.2e} ({worst['image']} "
          f"{worst['net']} {worst['layer']}); PNet l00_conv max |Δ| {max(r['max_abs'] for r in l0):.2e}")

# %% [markdown]
# ## 2 · The porting mistakes and their signatures
# A 1920×1080 frame at pyramid scale 0.2 gives exactly the reported 384×216 level: the earlier
# port was most likely fed 1080p video frames. We stretch a sample frame to 1080p and compare each
# mistake's layer 0 with the correct one (our reference, validated above).

# %%
source = shared / "samples" / "frames" / "multi_face_f140.png"
frame = divergence.hd_frame(read_image(source)) if source.exists() else \
    divergence.hd_frame(np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8))
rows = divergence.investigate(frame, 0.2, weights)
save_table(rows, "02_mistake_signatures_1080p", results / "tables", meta={"reported": divergence.REPORTED})
print(divergence.format_table(rows))

# %% [markdown]
# ## 3 · Which mistake? Only `bgr_input` has the reported character
# Its maximum depends on the most saturated red/blue edge of the frame, so only the *character*
# (max of a few units, small mean, channel 1 alone anti-correlated) can be matched, not the digits.

# %%
with figures.paper_style():
    fig = paper_figures.mistake_signatures(rows, divergence.REPORTED)
    figures.save_figure(fig, "02_mistake_signatures", results / "figures")
    plt.show()

# %% [markdown]
# ### Why channel 1 alone turns negative
# Swapping R and B negates the red-minus-blue part C of each channel's response and keeps the rest A:
# the output becomes A − C instead of A + C. Only a channel whose C outweighs A anti-correlates.

# %%
opponency = divergence.colour_opponency(weights)
save_table(opponency, "02_layer0_colour_opponency", results / "tables")
x = divergence.network_input(frame, 0.2)
a, c = divergence.swap_parts(x, weights)
ratio = [float(c[k].std() / a[k].std()) for k in range(10)]
for row, r in zip(opponency, ratio, strict=True):
    print(f"channel {row['channel']}: R sum {row['sum_r']:+.2f}  B sum {row['sum_b']:+.2f}  std(C)/std(A) {r:.2f}")

# %% [markdown]
# ### The same mistakes against the C++ dumps directly, and RNet/ONet under each mistake
# A mistake inside the network (kernel layout, flatten order) would also break RNet/ONet however
# they are fed. `bgr_input` leaves them intact when they are fed the dumped C++ input — which is
# recorded *after* OpenFace's BGR→RGB reordering, so a port validated that way cannot see the flip.

# %%
cpp_rows, net_rows = [], []
if have_dumps:
    cases = list(divergence.dumped_cases(shared))[: 2 if quick else None]
    for case in cases:
        for r in divergence.investigate(case.image, case.scale, weights, truth=case.truth):
            cpp_rows.append({"image": case.image_name, "scale_index": case.scale_index, **r})
    for name in ("sample1", "multi_face_f140") if quick else ("sample1", "sample2", "multi_face_f140"):
        image = read_image(shared / divergence.DUMPED_IMAGES[name])
        for mistake in (None, "bgr_input", "kernel_transposed", "fc_flatten_order"):
            for net in ("rnet", "onet"):
                out = divergence.net_output_divergence(image, weights, layers_dir / f"{name}_{net}.npz", mistake)
                net_rows.append({"image": name, "mistake": mistake or "none", **out})
    save_table(cpp_rows, "02_mistake_signatures_vs_cpp", results / "tables")
    save_table(net_rows, "02_rnet_onet_under_mistakes", results / "tables")
    for r in net_rows:
        print(f"{r['image']:16s} {r['mistake']:18s} {r['net']}: fed C++ input {r['from_cpp_in']:.1e}, "
              f"own crops {r['from_image']:.1e}")

# %%
from mtcnn_lab.lab.conclusions import divergence_conclusion

display(Markdown(divergence_conclusion(layer_rows, rows, net_rows, divergence.REPORTED, ratio)))
