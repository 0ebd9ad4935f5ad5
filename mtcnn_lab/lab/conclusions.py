"""The conclusion texts of notebooks 04 and 05, written from their measured tables (Markdown).

A notebook displays what these return; the tests check them on tables built by hand, for every branch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def number(value: float | None, spec: str) -> str:
    """``value`` formatted with ``spec``, or ``n/a`` when it was not measured (None)."""
    return "n/a" if value is None else format(value, spec)


def _lost(row: Mapping) -> int:
    return row["faces_a"] - row["matched"]


def _score(row: Mapping) -> tuple:
    return row["images_same_count"], -_lost(row), row["iou_mean"] or 0.0


def fp16_conclusion(summary_rows: Sequence[Mapping], layer_rows: Sequence[Mapping], n_images: int, dataset: str,
                    culprits: Sequence[str], rescued: Sequence[str], moved: int, proposals: int, quick: bool,
                    coreml_reason: str) -> str:
    """Notebook 04's conclusion. ``summary_rows``: one agreement summary with FP32 per variant
    (``numpy-fp16``, ``numpy-fp16-all``, ``onnx-fp16``, ``onnx-fp16-all``, and ``coreml`` /
    ``coreml-fp16-all`` where the saved Core ML programs ran, with ``executed_by``: Core ML, or off a Mac
    mtcnn-lab's MIL executor): ``images_same_count``, ``faces_a``, ``matched``, ``iou_mean``,
    ``iou_min``, ``max_px_error``. ``layer_rows``: ``variant``, ``net``, ``layer`` (``output`` is read),
    ``max_abs``. ``culprits``: images on which all-FP16 departs from FP32; ``rescued``: those that agree
    again with PNet in FP32; ``moved`` of ``proposals``: PNet proposals moved by FP16 offsets alone."""
    row = {r["variant"]: r for r in summary_rows}
    emu, emu_all, onnx16, onnx16_all = (row[v] for v in ("numpy-fp16", "numpy-fp16-all", "onnx-fp16", "onnx-fp16-all"))
    out = {(r["variant"], r["net"]): r["max_abs"] for r in layer_rows if r["layer"] == "output"}
    n = n_images
    text = (
        f"**Conclusion.** FP16 rounding changes the raw outputs by at most {out[('numpy-fp16-all', 'pnet')]:.1e} "
        f"(PNet), {out[('numpy-fp16-all', 'rnet')]:.1e} (RNet) and {out[('numpy-fp16-all', 'onet')]:.1e} (ONet) in "
        f"the emulation ({out[('onnx-fp16-all', 'pnet')]:.1e}, {out[('onnx-fp16-all', 'rnet')]:.1e} and "
        f"{out[('onnx-fp16-all', 'onet')]:.1e} with ONNX Runtime). On {n} images of {dataset}, the default policy "
        f"(PNet FP32, RNet/ONet FP16) finds the same number of faces as FP32 on {onnx16['images_same_count']}/{n} "
        f"images with ONNX FP16 and {emu['images_same_count']}/{n} in the emulation, {_lost(onnx16)} and "
        f"{_lost(emu)} faces lost, mean IoU {number(onnx16['iou_mean'], '.4f')} and {number(emu['iou_mean'], '.4f')}, "
        f"box errors up to {number(onnx16['max_px_error'], '.2f')} and {number(emu['max_px_error'], '.2f')} px. "
        f"With all three nets in FP16: same count on {onnx16_all['images_same_count']}/{n} (ONNX) and "
        f"{emu_all['images_same_count']}/{n} (emulation), {_lost(onnx16_all)} and {_lost(emu_all)} faces lost, "
        f"mean IoU {number(onnx16_all['iou_mean'], '.4f')} and {number(emu_all['iou_mean'], '.4f')}, min IoU "
        f"{number(onnx16_all['iou_min'], '.3f')} and {number(emu_all['iou_min'], '.3f')}, box errors up to "
        f"{number(onnx16_all['max_px_error'], '.1f')} and {number(emu_all['max_px_error'], '.1f')} px. ")
    share = f"{moved / proposals:.1%}" if proposals else "n/a"
    if _score(emu_all) < _score(emu) or _score(onnx16_all) < _score(onnx16):
        text += (f"The loss comes from PNet: of the {len(culprits)} images on which all-FP16 departs from FP32, "
                 f"{len(rescued)} agree again once PNet alone is FP32; with FP32 scores and only FP16 box offsets, "
                 f"{moved} of {proposals} PNet proposals ({share}) cross an integer boundary and move by a pixel, "
                 "so RNet scores shifted crops and NMS keeps other boxes. **PNet stays FP32**; RNet and ONet run "
                 "FP16. ")
    else:
        text += (f"On this {'quick subset' if quick else 'data set'} all-FP16 is not measurably worse, although "
                 f"{moved} of {proposals} PNet proposals ({share}) already move by a pixel under FP16 box offsets"
                 + (" (run the full data set to measure what that costs). " if quick else ". "))
    if "coreml" in row:
        how = row["coreml"].get("executed_by") or "Core ML"
        return text + f"The saved Core ML programs, run by {how}: " + ", ".join(
            f"`{v}` same count {row[v]['images_same_count']}/{n}, {_lost(row[v])} faces lost, mean IoU "
            f"{number(row[v]['iou_mean'], '.4f')}, box errors up to {number(row[v]['max_px_error'], '.2f')} px"
            for v in ("coreml", "coreml-fp16-all") if v in row) + "."
    return text + (f"The Core ML programs were not run here ({coreml_reason.split(';')[0]}), so the numpy FP16 "
                   "emulation stands in for them (`numpy-fp16` for `coreml`, `numpy-fp16-all` for "
                   "`coreml-fp16-all`).")


def parity_conclusion(summary: Sequence[Mapping], n_frames: int, n_groups: int, n_cpp_faces: int,
                      skipped: Mapping[str, str]) -> str:
    """Notebook 05's conclusion. ``summary``: one row per backend (``backend``, ``images``,
    ``images_agree``, ``matched``, ``iou_mean``, ``iou_min``, ``centre_max_abs``, ``size_max_abs``,
    ``one_minus_iou_max``, ``share_iou_above_0.99``); ``skipped``: backend -> why it did not run."""
    fp32 = [r["one_minus_iou_max"] for r in summary if "fp16" not in r["backend"] and r["matched"]]
    fp16 = [r for r in summary if "fp16" in r["backend"] and r["matched"]]

    def describe(r: Mapping) -> str:
        return (f"`{r['backend']}` agrees on {r['images_agree']}/{r['images']} frames, IoU mean "
                f"{number(r['iou_mean'], '.7f')} (min {number(r['iou_min'], '.7f')}), box centres within "
                f"{number(r['centre_max_abs'], '.1e')} px and sizes within {number(r['size_max_abs'], '.1e')} px")

    every = all(r["images_agree"] == r["images"] for r in summary)
    return (
        f"**Conclusion.** On {n_frames} frames of {n_groups} groups ({n_cpp_faces} C++ faces), "
        + ("every backend finds exactly C++ OpenFace's faces" if every
           else "not every backend finds exactly C++ OpenFace's faces (unmatched faces are listed in `05_per_face`)")
        + ": " + "; ".join(describe(r) for r in summary) + ". "
        + (f"The FP32 backends differ from C++ by at most 1 − IoU = {max(fp32):.1e}, float32 rounding of the box "
           "arithmetic; " if fp32 else "")
        + (f"the FP16 policies by at most {max(r['one_minus_iou_max'] for r in fp16):.1e} (every FP16 face has "
           f"IoU > 0.99: {'yes' if all(r['share_iou_above_0.99'] == 1 for r in fp16) else 'no'}). " if fp16 else "")
        + (f"Skipped here: {', '.join(f'`{k}` ({v})' for k, v in skipped.items())}." if skipped else ""))
