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
# # 01 · Weight inspection
#
# *For engineers porting or maintaining the detector: what a port must reproduce of OpenFace's weights.*
#
# What is inside OpenFace 2.2's MTCNN weights: every layer of PNet, RNet and ONet (shapes, parameter
# counts, value distributions, PReLU slopes), how the `.dat` format stores them, and the proof that
# OpenFace's files hold **bit for bit** the MIT-licensed weights of Zhang et al. 2016 that
# mtcnn-lab bundles (only the first FC layer's input order differs in other ports).

# %% tags=["parameters"]
quick = False
results_dir = None  # None: results/ of the project (found from the working directory, as data/manifest.json)
models_root = None  # OpenFace model cache; None: $OPENFACE_MODELS_DIR, else OpenFaceModels in the shared/ folder

# %%
import hashlib
import struct

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown, display

from mtcnn_lab.io.tables import save_table
from mtcnn_lab.lab import figures, paper_figures
from mtcnn_lab.lab.project import openface_models, results_folder
from mtcnn_lab.weights.dat import read_dat, write_dat
from mtcnn_lab.weights.models_cache import installed_dat_paths
from mtcnn_lab.weights.netspec import NET_NAMES, PReLU
from mtcnn_lab.weights.sets import load_weights

results = results_folder(results_dir)
bundled = load_weights("zhang2016")
dat_paths = installed_dat_paths(openface_models(models_root))
print("bundled:", bundled.source)
print("OpenFace cache:", "not installed" if dat_paths is None else dat_paths["pnet"].parent)

# %% [markdown]
# ## Every layer
# Layer keys are `lNN_<kind>` with NN the index in the `.dat` file, as in the C++ layer dumps.

# %%
rows = [{"net": net, **row} for net in NET_NAMES for row in bundled.nets()[net].summary()]
save_table(rows, "01_layers", results / "tables", meta={"weights": bundled.name})
totals = {net: sum(r["parameters"] for r in rows if r["net"] == net) for net in NET_NAMES}
for r in rows:
    print(f"{r['net']} {r['layer']:10s} {r['kind']:6s} {str(r['shape']):28s} {r['parameters']:>7d}")
print("parameters:", totals)

# %% [markdown]
# ## Value distributions and PReLU slopes

# %%
with figures.paper_style():
    fig = paper_figures.weight_histograms(bundled)
    figures.save_figure(fig, "01_weight_histograms", results / "figures")
    plt.show()

    fig = paper_figures.prelu_slopes(bundled)
    figures.save_figure(fig, "01_prelu_slopes", results / "figures")
    plt.show()
slopes = np.concatenate([layer.slopes for spec in bundled.nets().values() for layer in spec.layers
                         if isinstance(layer, PReLU)])
print(f"{len(slopes)} PReLU slopes in [{slopes.min():.3f}, {slopes.max():.3f}]; {(slopes < 0).sum()} negative, "
      f"{(slopes > 1).sum()} above 1")

# %% [markdown]
# ## The `.dat` format
# Little-endian int32 headers and float32 matrices (`rows, cols, cv_type=5`, then row-major values).
# The first bytes of PNet:

# %%
pnet_bytes = dat_paths["pnet"].read_bytes() if dat_paths else write_dat(bundled.pnet)
n_layers, layer_type, n_in, n_out = struct.unpack_from("<4i", pnet_bytes, 0)
print(f"{len(pnet_bytes)} bytes; {n_layers} layers; layer 0: type {layer_type} (conv), {n_in} input maps "
      f"(R, G, B), {n_out} kernels")
print("first kernel record header (rows, cols, type):", struct.unpack_from("<3i", pnet_bytes, 16 + 4 * n_out))

# %% [markdown]
# ## OpenFace's files are the Zhang et al. 2016 weights, bit for bit
# The bundled weights come from the `facenet-pytorch` wheel (`scripts/make_bundled_weights.py`:
# MIT, converted to OpenFace's layout, the first FC layer's columns reordered from facenet's
# (x, y, channel) flatten to OpenFace's (channel, x, y)). Serialised as `.dat`, each net must have
# exactly the SHA-256 of OpenFace's file.

# %%
proof = []
for net in NET_NAMES:
    ours = hashlib.sha256(write_dat(bundled.nets()[net])).hexdigest()
    row = {"net": net, "bundled_as_dat_sha256": ours}
    if dat_paths:
        data = dat_paths[net].read_bytes()
        row.update(openface_sha256=hashlib.sha256(data).hexdigest(),
                   arrays_identical=read_dat(data, net).equals(bundled.nets()[net]))
    proof.append(row)
save_table(proof, "01_bit_identity", results / "tables")
for row in proof:
    print(row)

# %%
from mtcnn_lab.lab.conclusions import weights_conclusion

display(Markdown(weights_conclusion(rows, proof, slopes)))
