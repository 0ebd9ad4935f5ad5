"""The notebook conclusions, on tables built by hand: the numbers in the sentences are recomputed here from the
rows, and every branch (agreement or not, skipped backends, missing data, quick mode) is taken."""

from __future__ import annotations

from collections import Counter

from mtcnn_lab.lab.conclusions import (
    benchmark_conclusion,
    conversion_conclusion,
    decoder_conclusion,
    divergence_conclusion,
    fp16_conclusion,
    number,
    parity_conclusion,
    weights_conclusion,
)


def sentences(text: str) -> int:
    """Sentences of a conclusion, its table pointer left out."""
    return text.split(" Per ")[0].count(". ") + 1


def test_number_formats_or_says_n_a():
    assert number(0.12345, ".2f") == "0.12" and number(None, ".2f") == "n/a"


# 01 · weights

LAYERS_01 = [{"net": "pnet", "parameters": 10}, {"net": "pnet", "parameters": 5}, {"net": "rnet", "parameters": 1200},
             {"net": "onet", "parameters": 3000}, {"net": "onet", "parameters": 7}]


def proof_row(net, same=True, arrays=True):
    return {"net": net, "bundled_as_dat_sha256": "ab" * 32, "openface_sha256": "ab" * 32 if same else "cd" * 32,
            "arrays_identical": arrays}


def test_weights_conclusion_says_bit_identical_with_the_parameter_counts_and_slopes():
    slopes = [-0.5, 0.25, 1.5, 0.0, -0.125]
    text = weights_conclusion(LAYERS_01, [proof_row(n) for n in ("pnet", "rnet", "onet")], slopes)
    total = Counter()
    for r in LAYERS_01:
        total[r["net"]] += r["parameters"]
    assert text.startswith("**Conclusion.** OpenFace's 3 `.dat` files hold bit for bit")
    assert f"PNet {total['pnet']}, RNet {total['rnet']:,}, ONet {total['onet']:,} parameters" in text
    assert "PNet 15, RNet 1,200, ONet 3,007" in text  # the same sums, by eye
    assert "2 of the 5 PReLU slopes are negative (they range from -0.50 to 1.50)" in text
    assert "neither a ReLU nor one leaky slope" in text and "**not**" not in text
    assert text.endswith("hashes: `results/tables/01_bit_identity.csv`") and 3 <= sentences(text) <= 6


def test_weights_conclusion_names_the_nets_that_differ_and_says_when_openface_s_files_are_missing():
    proof = [proof_row("pnet"), proof_row("rnet", same=False), proof_row("onet", arrays=False)]
    text = weights_conclusion(LAYERS_01, proof, [0.1, 0.2])
    assert "The bundled weights are **not** OpenFace's for `rnet` and `onet`" in text and "bit for bit" not in text
    assert "0 of the 2 PReLU slopes are negative" in text and "neither a ReLU" not in text
    missing = [{"net": n, "bundled_as_dat_sha256": "ab" * 32} for n in ("pnet", "rnet", "onet")]
    text = weights_conclusion(LAYERS_01, missing, [0.1, 0.2])
    assert "OpenFace's `.dat` files were not found here" in text and "bit for bit" not in text


# 02 · layer-0 divergence

REPORTED = {"max_abs": 8.86, "mean_abs": 0.153, "corr": -0.72}


def mistake(name, hit, max_abs=5.0, mean_abs=0.2, ch1=-0.7):
    return {"name": name, "max_abs": max_abs, "mean_abs": mean_abs, "ch1_corr": ch1, "matches_report": hit}


MISTAKES = [mistake("kernel_transposed", False, 17.5, 0.35, 0.77), mistake("bgr_input", True, 5.8951, 0.15527, -0.7295),
            mistake("resize_area", False), mistake("bgr_input+resize_area", True),
            mistake("bgr_input+kernel_transposed", False)]


def test_divergence_conclusion_names_the_matching_mistake_with_its_signature():
    layers = [{"image": "a", "net": "pnet", "layer": "l00_conv", "max_abs": m} for m in (1e-6, 2e-6, 5e-7)]
    nets = [{"mistake": "none", "from_cpp_in": 1e-7, "from_image": 1e-7},
            {"mistake": "bgr_input", "from_cpp_in": 7e-7, "from_image": 0.9},
            {"mistake": "bgr_input", "from_cpp_in": 3e-7, "from_image": 2.0}]
    ratio = [0.5, 1.4, 0.25]
    text = divergence_conclusion(layers, MISTAKES, nets, REPORTED, ratio)
    singles = [m for m in MISTAKES if "+" not in m["name"]]
    assert f"matches all {len(layers)} dumped C++ layers within {max(r['max_abs'] for r in layers):.1e}" in text
    assert f"Of the {len(singles)} single porting mistakes tried, only `bgr_input` has the reported signature" in text
    assert "(as do 1 of the 2 combinations of two mistakes tried)" in text
    assert "max |Δ| 5.90, mean |Δ| 0.155 and channel-1 correlation -0.73 (reported: 8.86, 0.153 and -0.72)" in text
    assert "stay within 7e-07 of C++ but move by up to 2.00" in text
    assert "Channel 1 is the only layer-0 channel whose red-minus-blue part outweighs the rest (std ratio 1.40, at " \
           "most 0.50 elsewhere)" in text
    assert text.endswith("`results/tables/02_mistake_signatures_1080p.csv`") and 3 <= sentences(text) <= 6
    text = divergence_conclusion(layers, MISTAKES, nets, REPORTED, [1.2, 0.5, 1.1])
    assert "In 2 layer-0 channels (0, 2) the red-minus-blue part outweighs the rest" in text


def test_divergence_conclusion_says_when_the_reference_or_the_mistakes_do_not_explain_it():
    bad = [{"image": "sample2", "net": "rnet", "layer": "l03_conv", "max_abs": 3e-2}]
    text = divergence_conclusion(bad, [m for m in MISTAKES if not m["matches_report"]], [], REPORTED, [0.5, 1.4])
    assert "does **not** match the C++ layer dumps: max |Δ| 3.0e-02 at sample2 rnet l03_conv" in text
    assert "None of the 2 single porting mistakes tried has the reported signature" in text
    assert "does not explain the reported divergence" in text and "Under" not in text and "Channel" not in text
    only_combined = [m for m in MISTAKES if "+" in m["name"] or not m["matches_report"]]
    text = divergence_conclusion([], only_combined, [], REPORTED, [0.5, 1.4])
    assert "The C++ layer dumps were not available here" in text
    assert "only combinations do: `bgr_input+resize_area`." in text


# 03 · conversion

def size_rows(formats=("onnx", "coreml")):
    return [{"net": net, "format": f, "precision": p, "bytes": b * (2 if p == "fp32" else 1) + (100 if f == "coreml"
            else 0)} for f in formats for p in ("fp32", "fp16") for net, b in (("pnet", 1024), ("rnet", 5120))]


def layer_row(backend, precision, net, layer, max_abs):
    return {"backend": backend, "precision": precision, "net": net, "layer": layer, "max_abs": max_abs}


def test_conversion_conclusion_reports_sizes_fp32_noise_fp16_rounding_and_core_ml():
    layers = [layer_row("onnx-cpu", "fp32", "pnet", "l00_conv", 2e-6), layer_row("torch-cpu", "fp32", "onet", "output",
              8e-6), layer_row("onnx-cpu-fp16-all", "fp16", "rnet", "output", 3e-3),
              layer_row("onnx-cpu-fp16-all", "fp16", "pnet", "output", 1.5e-2),
              layer_row("onnx-cpu-fp16-all", "fp16", "pnet", "l00_conv", 9e-2)]
    coreml = [{"precision": "fp32", "net": n, "executed_by": "Core ML on this Mac", "max_abs": m}
              for n, m in (("pnet", 6e-6), ("onet", 3e-6))] + [{"precision": "fp16-all", "net": "pnet",
                                                                 "executed_by": "Core ML on this Mac", "max_abs": 2e-2}]
    sizes = size_rows()
    text = conversion_conclusion(sizes, layers, coreml, 17, 9, "3 images of dev: a, b, c", None, "")
    onnx32 = sum(r["bytes"] for r in sizes if (r["format"], r["precision"]) == ("onnx", "fp32")) / 1024
    onnx16 = sum(r["bytes"] for r in sizes if (r["format"], r["precision"]) == ("onnx", "fp16")) / 1024
    assert (onnx32, onnx16) == (12.0, 6.0)  # 2 x (1 + 5) KiB and 1 + 5 KiB, by hand
    assert "(opset 17) and convert to Core ML ML programs (PNet with 9 enumerated input shapes)" in text
    assert "take 12 KiB as ONNX FP32 and 6 KiB as ONNX FP16" in text
    assert "On real network inputs (3 images of dev), every layer of `onnx-cpu` and `torch-cpu` stays within " \
           "8.0e-06 of the numpy reference (worst: `torch-cpu` onet output), float32 rounding noise" in text
    assert "outputs by up to 1.5e-02 (PNet)" in text  # outputs only: the 9e-2 of a layer inside is not an output
    assert "run by Core ML on this Mac, differ from the reference by at most 6.0e-06 in FP32 and 2.0e-02 with all " \
           "nets in FP16" in text
    assert text.endswith("sizes: `results/tables/03_model_sizes.csv`") and 3 <= sentences(text) <= 6


def test_conversion_conclusion_says_when_core_ml_failed_or_did_not_run_and_when_fp32_departs():
    layers = [layer_row("openvino-cpu", "fp32", "rnet", "l05_fc", 3e-3)]
    text = conversion_conclusion(size_rows(("onnx",)), layers, [], 17, None, "random inputs (no data set: x)",
                                 "coremltools is not installed", "")
    assert "but Core ML conversion failed here (coremltools is not installed)" in text
    assert "On random inputs (no data set here), `openvino-cpu` departs from the numpy reference by 3.0e-03 at " \
           "rnet l05_fc: more than float32 rounding" in text
    assert "FP16 rounding" not in text and "Core ML programs" not in text
    text = conversion_conclusion(size_rows(), [], [], 17, 9, "1 image of dev: a", None,
                                 "Core ML predicts only on macOS; not here")
    assert "No FP32 runtime besides numpy was available here" in text
    assert "The Core ML programs were not run here (Core ML predicts only on macOS)." in text


# 04 · FP16

def summary_row(variant, same, faces, matched, iou_mean, iou_min=0.9, px=0.5):
    return {"variant": variant, "images_same_count": same, "faces_a": faces, "matched": matched,
            "iou_mean": iou_mean, "iou_min": iou_min, "max_px_error": px}


def test_fp16_conclusion_blames_pnet_when_all_fp16_is_worse():
    rows = [summary_row("numpy-fp16", 50, 60, 60, 0.9998, 0.9996, 0.05),
            summary_row("numpy-fp16-all", 49, 60, 59, 0.995, 0.868, 10.9),
            summary_row("onnx-fp16", 50, 60, 60, 0.99981, 0.9942, 0.49),
            summary_row("onnx-fp16-all", 50, 60, 60, 0.99982, 0.95, 3.0)]
    text = fp16_conclusion(rows, 50, "dev", ["a", "b"], ["a"], 12, 400, quick=False,
                           coreml_reason="Core ML predicts only on macOS; not here")
    assert text.startswith("**Conclusion.** The default policy (PNet FP32, RNet and ONet FP16) keeps every face on "
                           "all 50 images of dev")
    assert "IoU with FP32 at least 0.9942, boxes within 0.49 px" in text  # the worse of onnx-fp16 and numpy-fp16
    assert "`numpy-fp16-all` finds FP32's number of faces on 49/50 images and loses 1 face" in text
    assert "`onnx-fp16-all` finds FP32's number of faces on 50/50 images and loses 0 faces" in text
    assert "IoU falls to 0.8680 and boxes move by up to 10.9 px" in text
    assert "PNet is a cause: of the 2 images on which all-FP16 departs from FP32, only 1 agree again" in text
    assert "12 of 400 PNet proposals (3.0%)" in text and "**PNet stays FP32.**" in text
    assert "The Core ML programs were not run here (Core ML predicts only on macOS)" in text
    assert text.endswith("per image: `results/tables/04_fp16_per_image.csv`") and 3 <= sentences(text) <= 6
    text = fp16_conclusion(rows, 50, "dev", ["a", "b"], ["a", "b"], 12, 400, quick=False, coreml_reason="x")
    assert "PNet is the cause: of the 2 images on which all-FP16 departs from FP32, all 2 agree again" in text


def test_fp16_conclusion_says_plainly_when_the_default_policy_loses_faces():
    rows = [summary_row("numpy-fp16", 9, 12, 11, 0.99), summary_row("numpy-fp16-all", 9, 12, 11, 0.99),
            summary_row("onnx-fp16", 10, 12, 12, 0.99, 0.97), summary_row("onnx-fp16-all", 10, 12, 12, 0.99)]
    text = fp16_conclusion(rows, 10, "dev", [], [], 3, 300, quick=False, coreml_reason="no Mac")
    assert "does **not** keep every face on the 10 images of dev: `onnx-fp16` finds FP32's number of faces on 10/10 " \
           "images and loses 0 faces, `numpy-fp16` finds FP32's number of faces on 9/10 images and loses 1 face" in text
    assert "On this data set all three nets in FP16 are not measurably worse" in text and "run the full" not in text


def test_fp16_conclusion_says_when_all_fp16_is_not_worse_and_reports_core_ml_runs():
    same = [summary_row(v, 6, 8, 8, 0.9999) for v in ("numpy-fp16", "numpy-fp16-all", "onnx-fp16", "onnx-fp16-all")]
    core = [summary_row("coreml", 6, 8, 8, 0.99991, 0.9996), summary_row("coreml-fp16-all", 5, 8, 7, 0.9971, 0.868)]
    text = fp16_conclusion(same + core, 6, "dev", [], [], 0, 0, quick=True, coreml_reason="")
    assert "On this quick subset all three nets in FP16 are not measurably worse" in text
    assert "0 of 0 PNet proposals (n/a)" in text and "(run the full" not in text and "run the full data set" in text
    assert "PNet stays" not in text
    assert "Run by Core ML, the saved Core ML programs give: `coreml` finds FP32's number of faces on 6/6 images " \
           "and loses 0 faces, `coreml-fp16-all` finds FP32's number of faces on 5/6 images and loses 1 face " \
           "(worst IoU 0.8680)" in text
    executed = [{**r, "executed_by": "mtcnn-lab's MIL executor"} for r in core]
    text = fp16_conclusion(same + executed, 6, "dev", [], [], 0, 0, quick=True, coreml_reason="no Mac")
    assert "Run by mtcnn-lab's MIL executor, the saved Core ML programs give" in text


# 05 · end to end against C++

def parity_row(backend, agree, images=10, iou_min=0.9999998, centre=1e-5, size=2e-5):
    return {"backend": backend, "images": images, "images_agree": agree, "matched": 12, "iou_min": iou_min,
            "centre_max_abs": centre, "size_max_abs": size}


def test_parity_conclusion_counts_the_fp32_backends_that_agree_and_names_the_worst():
    rows = [parity_row("numpy", 10), parity_row("openvino", 10, centre=8.4e-5), parity_row("torch", 10, size=6e-5),
            parity_row("onnx-fp16", 10, iou_min=0.99424, size=0.35), parity_row("numpy-fp16", 10, iou_min=0.9996)]
    text = parity_conclusion(rows, 10, 3, 12, {"coreml": "needs macOS"}, quick=False)
    fp32 = [r for r in rows if "fp16" not in r["backend"]]
    worst = max(fp32, key=lambda r: max(r["centre_max_abs"], r["size_max_abs"]))
    assert worst["backend"] == "openvino"
    assert text.startswith("**Conclusion.** On 10 frames of 3 groups (12 faces found by C++ OpenFace), all 3 FP32 "
                           "backends (`numpy`, `openvino` and `torch`) find exactly C++'s faces on every frame")
    assert "by at most 8.4e-05 px (`openvino`), float32 rounding" in text
    assert "The 2 FP16 policies agree on every frame, with IoU at least 0.9942 (`onnx-fp16`) and boxes within " \
           "0.35 px" in text
    assert "Not run here: `coreml` (needs macOS)." in text
    assert "Per backend: `results/tables/05_summary.csv`" in text and 3 <= sentences(text) <= 6


def test_parity_conclusion_says_plainly_when_not_every_backend_agrees():
    rows = [parity_row("numpy", 10), parity_row("torch", 9, centre=2.5), parity_row("onnx-fp16", 8, iou_min=None)]
    text = parity_conclusion(rows, 10, 2, 12, {}, quick=True)
    assert "(12 faces found by C++ OpenFace; a quick subset of the evaluation set)" in text
    assert "**not every FP32 backend finds exactly C++'s faces**: 1 of 2 do on every frame, `torch` agrees on 9/10 " \
           "frames" in text
    assert "by at most 2.5e+00 px (`torch`)." in text and "float32 rounding" not in text
    assert "The FP16 policies do **not** all agree: `onnx-fp16` agrees on 8/10 frames, with IoU at least n/a" in text
    assert "Not run here" not in text
    text = parity_conclusion([parity_row("numpy-fp16", 10)], 10, 2, 12, {"numpy": "broken"}, quick=False)
    assert "no FP32 backend ran" in text and "Not run here: `numpy` (broken)." in text


# 06 · benchmarks

def run(backend, threads, ms, shares=None):
    return {"backend": backend, "threads": threads, "sum_of_medians_ms": ms, "fps": 50 / ms * 1e3,
            "stage_share": shares or {"pnet": 0.5, "rnet": 0.5}}


def test_benchmark_conclusion_compares_the_fastest_one_thread_run_with_cpp():
    runs = [run("numpy", 1, 850.0, {"pnet": 0.24, "rnet": 0.33, "onet": 0.35}), run("openvino-cpu", 1, 400.0),
            run("numpy", 2, 800.0), run("openvino-cpu", 2, 290.0)]
    text = benchmark_conclusion(runs, {"sum_of_medians_ms": 1946.0}, 50, 2, False, False, quick=False)
    assert text.startswith("**Conclusion.** With 1 thread, the fastest backend here is `openvino-cpu`: 400 ms for "
                           "the 50 frames (125 FPS)")
    assert f"against 1946 ms for C++ OpenFace's 1-thread reference timings: {1946 / 400:.2f}× faster than C++" in text
    assert "4.87× faster" in text  # 1946 / 400 = 4.865, by hand
    assert "With 2 threads on this 2-core machine, `openvino-cpu` needs 290 ms (172 FPS)" in text
    assert "`onet` takes the largest share of the time (35%)" in text
    assert "Not measured here: the Core ML compute-unit sweep (it needs macOS) and pymtcnn (not installed)." in text
    assert "quick" not in text and "`results/tables/06_latency.csv`" in text and 3 <= sentences(text) <= 6
    assert "compute units" not in text.split("Per backend")[1]


def test_benchmark_conclusion_says_when_cpp_is_faster_or_not_timed_and_when_the_run_was_quick():
    runs = [run("onnx-cpu", 1, 500.0), run("numpy", 1, 900.0, {"pnet": 0.6, "onet": 0.4})]
    text = benchmark_conclusion(runs, {"sum_of_medians_ms": 250.0}, 6, 16, True, True, quick=True)
    assert "C++ is 2.00× faster" in text and "With 2 threads" not in text
    assert "`pnet` takes the largest share of the time (60%)" in text and "Not measured" not in text
    assert "This quick run timed only `numpy` and `onnx-cpu`" in text
    assert "Core ML compute units: `results/tables/06_coreml_compute_units.csv`" in text
    text = benchmark_conclusion([run("onnx-cpu", 1, 500.0)], None, 6, 16, True, False, quick=False)
    assert "the reference has no C++ timings for these frames" in text and "numpy reference" not in text
    assert "Not measured here: pymtcnn (not installed)." in text


# 07 · phone video decoding

def profile_row(profile, picture, faces, matched, iou, px, same_frames, frames=30, baseline_faces=180):
    return {"profile": profile, "picture": picture, "frames": frames, "faces": faces, "baseline_faces": baseline_faces,
            "frames_same_count": same_frames, "matched": matched, "iou_mean": iou, "max_px": px}


def test_decoder_conclusion_sorts_the_profiles_into_same_turned_and_moved():
    rows = [profile_row("opencv-4.6", "turned 180 cw", 72, 47, 0.465, 46.5, 0),
            profile_row("opencv-4.0", "turned 270 cw", 28, 0, None, None, 0),
            profile_row("opencv-4.5", "upright", 180, 180, 0.9331, 10.02, 30),
            profile_row("opencv-4.13", "upright", 180, 180, 1.0, 0.0, 30),
            profile_row("upright", "upright", 180, 180, 1.0, 0.0, 30)]
    text = decoder_conclusion(rows, "upright", "clip.mp4")
    assert text.startswith("**Conclusion.** On clip.mp4, `opencv-4.13` find exactly the upright decode's 180 faces")
    assert "`opencv-4.6` and `opencv-4.0` hand OpenFace a turned picture (turned 180 cw, turned 270 cw) and find 72 " \
           "and 28 faces instead of 180" in text
    assert "`opencv-4.5` gives the upright picture but other pixels: same count on 30/30 frames, yet mean IoU 0.933 " \
           "and boxes up to 10.0 px away" in text
    assert "So decode phone video as `opencv-4.13` do" in text
    assert text.endswith("`results/tables/07_decode_profiles.csv`") and 3 <= sentences(text) <= 6


def test_decoder_conclusion_says_when_no_profile_gives_the_baseline_s_faces():
    rows = [profile_row("opencv-4.5", "upright", 170, 160, None, None, 20, baseline_faces=175),
            profile_row("upright", "upright", 175, 175, 1.0, 0.0, 30, baseline_faces=175)]
    text = decoder_conclusion(rows, "upright", "clip.mp4")
    assert "no profile finds exactly the upright decode's 175 faces" in text and "turned picture" not in text
    assert "same count on 20/30 frames, yet mean IoU n/a and boxes up to n/a px away" in text
    assert "So compare only results decoded with the same profile" in text
