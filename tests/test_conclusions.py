"""The notebook conclusions, on tables built by hand: every number lands in the text, every branch is taken."""

from __future__ import annotations

from mtcnn_lab.lab.conclusions import fp16_conclusion, number, parity_conclusion


def summary_row(variant, same, faces, matched, iou_mean, iou_min=0.9, px=0.5):
    return {"variant": variant, "images_same_count": same, "faces_a": faces, "matched": matched,
            "iou_mean": iou_mean, "iou_min": iou_min, "max_px_error": px}


LAYERS = [{"variant": v, "net": n, "layer": "output", "max_abs": m}
          for v, base in (("numpy-fp16-all", 1e-3), ("onnx-fp16-all", 2e-3))
          for n, m in (("pnet", base), ("rnet", 3 * base), ("onet", 5 * base))]


def test_number_formats_or_says_n_a():
    assert number(0.12345, ".2f") == "0.12" and number(None, ".2f") == "n/a"


def test_fp16_conclusion_blames_pnet_when_all_fp16_is_worse():
    rows = [summary_row("numpy-fp16", 50, 60, 60, 0.9998), summary_row("numpy-fp16-all", 49, 60, 59, 0.995, 0.3, 7.0),
            summary_row("onnx-fp16", 50, 60, 60, 0.99981), summary_row("onnx-fp16-all", 50, 60, 60, 0.99982)]
    text = fp16_conclusion(rows, LAYERS, 50, "dev", ["a", "b"], ["a"], 12, 400, quick=False,
                           coreml_reason="Core ML predicts only on macOS; not here")
    assert text.startswith("**Conclusion.**")
    assert "1.0e-03 (PNet), 3.0e-03 (RNet) and 5.0e-03 (ONet)" in text and "(2.0e-03, 6.0e-03 and 1.0e-02" in text
    assert "50/50 images with ONNX FP16 and 50/50 in the emulation, 0 and 0 faces lost" in text
    assert "same count on 50/50 (ONNX) and 49/50 (emulation), 0 and 1 faces lost" in text
    assert "of the 2 images on which all-FP16 departs from FP32, 1 agree again" in text
    assert "12 of 400 PNet proposals (3.0%)" in text and "**PNet stays FP32**" in text
    assert "The Core ML programs were not run here (Core ML predicts only on macOS)" in text


def test_fp16_conclusion_says_when_all_fp16_is_not_worse_and_reports_core_ml_runs():
    same = [summary_row(v, 6, 8, 8, 0.9999) for v in ("numpy-fp16", "numpy-fp16-all", "onnx-fp16", "onnx-fp16-all")]
    core = [summary_row("coreml", 6, 8, 8, 0.99991), summary_row("coreml-fp16-all", 5, 8, 7, 0.9971)]
    text = fp16_conclusion(same + core, LAYERS, 6, "dev", [], [], 0, 0, quick=True, coreml_reason="")
    assert "On this quick subset all-FP16 is not measurably worse" in text and "(run the full data set" in text
    assert "0 of 0 PNet proposals (n/a)" in text and "PNet stays" not in text
    assert "The saved Core ML programs, run by Core ML: `coreml` same count 6/6, 0 faces lost, mean IoU 0.9999" in text
    assert "`coreml-fp16-all` same count 5/6, 1 faces lost" in text
    executed = [{**r, "executed_by": "mtcnn-lab's MIL executor"} for r in core]
    text = fp16_conclusion(same + executed, LAYERS, 6, "dev", [], [], 0, 0, quick=True, coreml_reason="no Mac")
    assert "The saved Core ML programs, run by mtcnn-lab's MIL executor: `coreml` same count 6/6" in text


def parity_row(backend, agree, images=10, one_minus=1e-7, share=1.0):
    return {"backend": backend, "images": images, "images_agree": agree, "matched": 12, "iou_mean": 1 - one_minus,
            "iou_min": 1 - 2 * one_minus, "centre_max_abs": 1e-4, "size_max_abs": 2e-4, "one_minus_iou_max": one_minus,
            "share_iou_above_0.99": share}


def test_parity_conclusion_names_every_backend_and_the_fp32_and_fp16_bounds():
    rows = [parity_row("numpy", 10), parity_row("openvino", 10, one_minus=3e-7),
            parity_row("onnx-fp16", 10, one_minus=2e-4)]
    text = parity_conclusion(rows, 10, 3, 12, {"coreml": "needs macOS"})
    assert text.startswith("**Conclusion.** On 10 frames of 3 groups (12 C++ faces), every backend finds exactly")
    assert "`openvino` agrees on 10/10 frames, IoU mean 0.9999997 (min 0.9999994)" in text
    assert "at most 1 − IoU = 3.0e-07" in text and "the FP16 policies by at most 2.0e-04" in text
    assert "IoU > 0.99: yes" in text and "Skipped here: `coreml` (needs macOS)." in text


def test_parity_conclusion_says_when_a_backend_misses_faces():
    text = parity_conclusion([parity_row("torch", 9), parity_row("numpy-fp16", 10, share=0.5)], 10, 2, 12, {})
    assert "not every backend finds exactly C++ OpenFace's faces" in text and "IoU > 0.99: no" in text
    assert "Skipped" not in text
