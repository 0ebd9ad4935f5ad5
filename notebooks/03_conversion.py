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
# # 03 · Conversion: ONNX and Core ML
#
# *For engineers deploying the detector: what the exported models are, and how closely each runtime follows the
# reference.*
#
# PNet, RNet and ONet exported to ONNX (FP32 and FP16) and converted to Core ML ML programs
# (FP32 and FP16), with
# 1. the size of every model file and what each graph contains (ONNX ops and opset, Core ML ops and
#    PNet's enumerated input shapes),
# 2. every layer of every runtime available here compared with the numpy reference (which matches
#    C++ OpenFace, notebook 02) on real network inputs: torch on the CPU, ONNX Runtime FP32 and FP16,
# 3. Core ML's outputs compared the same way, where Core ML can run (macOS only).

# %% tags=["parameters"]
quick = False
results_dir = None  # None: results/ of the project (found from the working directory, as data/manifest.json)
models_dir = None  # where the models are written; None: a temporary folder, removed at the end
manifest = None  # images whose real network inputs are compared; None: data/manifest.json (../shared)
opset = 17  # ONNX opset, at least 17

# %%
import collections
import contextlib
import io
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown, display

from mtcnn_lab.backends.coreml import coreml_available
from mtcnn_lab.backends.select import make_backend
from mtcnn_lab.convert.coreml import convert_coreml, import_coremltools, tree_bytes
from mtcnn_lab.convert.onnx import export_onnx
from mtcnn_lab.errors import MtcnnLabError
from mtcnn_lab.io.tables import save_table
from mtcnn_lab.lab import figures, paper_figures
from mtcnn_lab.lab.ane import OFF_MAC, ane_eligibility
from mtcnn_lab.lab.conversion import onnx_report
from mtcnn_lab.lab.dataset import load_manifest
from mtcnn_lab.lab.layers import backend_layer_differences, cascade_net_inputs
from mtcnn_lab.lab.project import results_folder
from mtcnn_lab.weights.netspec import NET_NAMES
from mtcnn_lab.weights.sets import load_weights

results = results_folder(results_dir)
weights = load_weights("zhang2016")  # bit-identical to OpenFace's .dat (notebook 01)
scratch = tempfile.TemporaryDirectory(prefix="mtcnn-lab-03-") if models_dir is None else None
models = Path(scratch.name if scratch else models_dir)
print("models written to:", models, "(temporary)" if scratch else "")

# %% [markdown]
# ## 1 · Export and conversion
# ONNX: graphs built from the NetSpecs with onnx.helper (no torch), FP16 by onnxconverter-common with FP32 inputs and
# outputs. Core ML: `coremltools.convert` to ML programs (macOS 13+); FP16 casts after the input and
# before the output. Conversion works on any OS; only Core ML *prediction* needs macOS.

# %%
onnx_paths = {"fp32": export_onnx(weights, models, opset=opset, overwrite=True),
              "fp16": export_onnx(weights, models, fp16=True, opset=opset, overwrite=True)}
onnx_info = {p: onnx_report(weights, paths, fp16=p == "fp16") for p, paths in onnx_paths.items()}

coreml_paths, coreml_error = {}, None
try:
    for precision in ("fp32", "fp16"):
        with contextlib.redirect_stderr(io.StringIO()):  # coremltools' per-pass progress bars
            coreml_paths[precision] = convert_coreml(weights, models, precision, overwrite=True)
except MtcnnLabError as err:
    coreml_error = str(err)
print("Core ML:", coreml_error or ", ".join(f"{p}: {len(paths) - 1} packages" for p, paths in coreml_paths.items()))


# %%
def mlprogram_ops(path: Path) -> dict[str, int]:
    """Op counts of a Core ML ML program (``const`` ops, which hold the weights, left out)."""
    spec = import_coremltools().models.MLModel(str(path), skip_model_load=True).get_spec()
    main = spec.mlProgram.functions["main"]
    ops = collections.Counter(op.type for op in main.block_specializations[main.opset].operations)
    return dict(sorted((k, v) for k, v in ops.items() if k != "const"))


size_rows, fact_rows = [], []
parameters = {net: sum(a.size for a in spec.arrays().values()) for net, spec in weights.nets().items()}
for precision, info in onnx_info.items():
    for net, model in info["models"].items():
        size_rows.append({"net": net, "format": "onnx", "precision": precision, "file": model["file"],
                          "bytes": model["bytes"], "parameters": parameters[net]})
        fact_rows.append({"net": net, "format": "onnx", "precision": precision, "opset": model["opset"],
                          "ops": model["ops"], "input_shapes": 1})
for precision, paths in coreml_paths.items():
    for net in NET_NAMES:
        size_rows.append({"net": net, "format": "coreml", "precision": precision, "file": paths[net].name,
                          "bytes": tree_bytes(paths[net]), "parameters": parameters[net]})
        n_shapes = len(import_coremltools().models.MLModel(str(paths[net]), skip_model_load=True)
                       .get_spec().description.input[0].type.multiArrayType.enumeratedShapes.shapes)
        fact_rows.append({"net": net, "format": "coreml", "precision": precision, "opset": "CoreML6",
                          "ops": mlprogram_ops(paths[net]), "input_shapes": n_shapes or 1})
save_table(size_rows, "03_model_sizes", results / "tables", meta={"weights": weights.name, "onnx_opset": opset})
save_table(fact_rows, "03_graph_facts", results / "tables")
for r in size_rows:
    print(f"{r['net']} {r['format']:6s} {r['precision']}  {r['bytes']:>9,d} bytes  ({r['parameters']:,} parameters)")

# %%
with figures.paper_style():
    fig = paper_figures.model_sizes(size_rows)
    figures.save_figure(fig, "03_model_sizes", results / "figures")
    plt.show()

# %% [markdown]
# ### What the graphs contain
# The ONNX graphs use only `Conv`, `PRelu` (ONNX's native op), `MaxPool`, `Gemm` and, before the
# first FC layer, `Transpose` + `Flatten` for OpenFace's (channel, x, y) flatten order; FP16 adds a
# `Cast` after the input and before the output. PNet's ONNX input has dynamic height and width;
# Core ML's PNet takes an *enumerated* set of pyramid-level sizes instead, which the Neural Engine
# compiles ahead of time.

# %%
for r in fact_rows:
    shapes = f"; {r['input_shapes']} enumerated input shapes" if r["input_shapes"] > 1 else ""
    print(f"{r['net']} {r['format']:6s} {r['precision']} opset {r['opset']}{shapes}: "
          + ", ".join(f"{op} {n}" for op, n in r["ops"].items()))
pnet_shapes = next((r["input_shapes"] for r in fact_rows if r["format"] == "coreml" and r["net"] == "pnet"), None)

# %% [markdown]
# ## 2 · Every layer against the numpy reference
# Inputs are what the cascade really feeds each net on sample images: PNet the largest pyramid
# level, RNet and ONet the crops of the boxes reaching them. Every runtime gets exactly these
# float32 batches; ONNX FP16 is the all-FP16 export (each net FP16, with per-layer taps).

# %%
try:
    dataset = load_manifest(manifest, quick=1 if quick else 3)
    images = [image for _, image in dataset.iter_images()]
    batches = [cascade_net_inputs(image, weights, max_crops=32) for image in images]
    input_source = (f"{len(batches)} image{'s' if len(batches) > 1 else ''} of {dataset.name}: "
                    + ", ".join(item.id for item in dataset))
except MtcnnLabError as err:
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)]
    batches = [{"pnet": rng.uniform(-1, 1, (1, 3, 216, 384)).astype(np.float32),
                "rnet": rng.uniform(-1, 1, (16, 3, 24, 24)).astype(np.float32),
                "onet": rng.uniform(-1, 1, (16, 3, 48, 48)).astype(np.float32)}]
    input_source = f"random inputs (no data set: {err})"
print("inputs:", input_source)

runtimes = {}
for name in ("torch", "onnx", "openvino", "onnx-fp16-all"):
    try:
        runtimes[name] = make_backend(name, weights)
    except MtcnnLabError as err:
        print(f"{name}: not available here ({err})")

layer_rows = []
for name, backend in runtimes.items():
    for net in NET_NAMES:
        per_input = [backend_layer_differences(backend, weights, net, b[net]) for b in batches if len(b[net])]
        for layer in per_input[0]:
            layer_rows.append({"backend": backend.name, "precision": "fp16" if "fp16" in name else "fp32", "net": net,
                               "layer": layer, "inputs": sum(len(b[net]) for b in batches),
                               "max_abs": max(t[layer]["max_abs"] for t in per_input),
                               "mean_abs": float(np.mean([t[layer]["mean_abs"] for t in per_input]))})
save_table(layer_rows, "03_layer_diffs", results / "tables", meta={"inputs": input_source, "weights": weights.name})
for r in layer_rows:
    if r["layer"] == "output":
        print(f"{r['backend']:18s} {r['net']} output: max |Δ| {r['max_abs']:.2e}, mean |Δ| {r['mean_abs']:.2e}")

# %%
with figures.paper_style():
    fig = paper_figures.layer_differences(layer_rows, "backend", "max |Δ| from numpy reference")
    figures.save_figure(fig, "03_layer_diffs", results / "figures")
    plt.show()

# %% [markdown]
# ## 3 · Core ML
# Core ML models run only through macOS's Core ML framework. Elsewhere the saved programs themselves are
# executed op by op by mtcnn-lab's MIL executor (`mtcnn_lab/nets/mil.py`): the same `.mlpackage` files a
# Mac user loads, so a mistake in the conversion shows here too. The FP32 and all-FP16 programs get the same
# inputs (their outputs only: a compiled ML program exposes no intermediate layers). PNet runs a pyramid
# level the programs were converted for (here a 640×480 frame's).

# %%
coreml_ok, coreml_reason = coreml_available()
coreml_rows = []
executed_by = "Core ML on this Mac" if coreml_ok else "mtcnn-lab's MIL executor (mtcnn_lab/nets/mil.py)"
if coreml_paths:
    import cv2

    from mtcnn_lab.backends.coreml import CoreMLBackend

    # PNet takes only its enumerated sizes: feed each image's largest level as a 640x480 frame's
    vga = [{**b, "pnet": cascade_net_inputs(cv2.resize(image, (640, 480)), weights)["pnet"]}
           for b, image in zip(batches, images, strict=True)]
    for precision in ("fp32", "fp16-all"):
        backend = CoreMLBackend(weights, precision=precision, model_dir=models, strict_shapes=True,
                                simulate=not coreml_ok)
        for net in NET_NAMES:
            per_input = [backend_layer_differences(backend, weights, net, b[net])["output"]
                         for b in vga if len(b[net])]
            coreml_rows.append({"backend": backend.name, "precision": precision, "net": net,
                                "executed_by": executed_by, "max_abs": max(t["max_abs"] for t in per_input),
                                "mean_abs": float(np.mean([t["mean_abs"] for t in per_input]))})
    save_table(coreml_rows, "03_coreml_outputs", results / "tables",
               meta={"inputs": input_source, "executed_by": executed_by,
                     "core_ml": coreml_reason if coreml_ok else f"not on this OS: {coreml_reason}"})
    print(f"Core ML programs executed by {executed_by}:")
    for r in coreml_rows:
        print(f"{r['backend']:18s} {r['net']} output: max |Δ| {r['max_abs']:.2e}")
else:
    print(f"No Core ML programs were converted here: {coreml_error}.")

# %% [markdown]
# ### Which programs the Neural Engine can take
# Read off the saved files (operations, compute dtype, input shapes, size) and judged by what Apple's and
# coremltools' documents say (`mtcnn_lab/lab/ane.py` names them). Where each operation really runs can only be
# read on a Mac (`MLComputePlan`).

# %%
if coreml_paths:
    ane_rows = ane_eligibility({(net, precision): paths[net] for precision, paths in coreml_paths.items()
                                for net in NET_NAMES})
    save_table(ane_rows, "03_ane_eligibility", results / "tables", meta={"off_mac": OFF_MAC})
    for r in ane_rows:
        print(f"{r['net']} {r['precision']}: {r['compute_dtype']}, {r['input_shapes']} input shape(s) "
              f"({r['input']}...), {r['bytes'] / 1024:.0f} KiB -> Neural Engine: {r['neural_engine']}")
    print("Not knowable here:", OFF_MAC)

# %%
if scratch:
    scratch.cleanup()

from mtcnn_lab.lab.conclusions import conversion_conclusion

display(Markdown(conversion_conclusion(size_rows, layer_rows, coreml_rows, opset, pnet_shapes, input_source,
                                       coreml_error, coreml_reason)))
