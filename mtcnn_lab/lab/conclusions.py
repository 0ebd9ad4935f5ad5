"""The conclusion texts of the numbered notebooks, written from their measured tables (Markdown).

Each is a few sentences of prose: the numbers that answer the notebook's question, what could not be measured
here, and the table that holds the rest. A notebook displays what these return; the tests check them on tables
built by hand, for every branch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from mtcnn_lab.lab.accuracy_records import BOUNDS

NET_LABELS = {"pnet": "PNet", "rnet": "RNet", "onet": "ONet"}
"""How the texts name the nets."""

PRECISION_LABELS = {"fp32": "in FP32", "fp16": "with RNet and ONet in FP16", "fp16-all": "with all nets in FP16"}
"""How the texts name the precision policies."""

NOISE_LEVEL = 1e-4
"""Largest difference between two FP32 runs of a net that the texts call float32 rounding noise."""


def number(value: float | None, spec: str) -> str:
    """``value`` formatted with ``spec``, or ``n/a`` when it was not measured (None)."""
    return "n/a" if value is None else format(value, spec)


def _names(names: Sequence[str]) -> str:
    """``a``, ``b`` and ``c`` as code spans, in the given order."""
    quoted = [f"`{n}`" for n in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]


def _count(n: int, noun: str) -> str:
    """``1 face``, ``2 faces``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _table(*names: str) -> str:
    """The results tables named, as a pointer for the reader (``results/tables/<name>.csv``)."""
    return "; ".join(f"`results/tables/{name}.csv`" for name in names)


def weights_conclusion(layer_rows: Sequence[Mapping], proof_rows: Sequence[Mapping], slopes: Sequence[float]) -> str:
    """Notebook 01's conclusion. ``layer_rows``: one per layer (``net``, ``parameters``); ``proof_rows``: one per
    net (``net``, ``bundled_as_dat_sha256``, and where OpenFace's files were found ``openface_sha256`` and
    ``arrays_identical``); ``slopes``: every PReLU slope of the three nets."""
    params: dict[str, int] = {}
    for r in layer_rows:
        params[r["net"]] = params.get(r["net"], 0) + r["parameters"]
    checked = [r for r in proof_rows if "openface_sha256" in r]
    differ = [r["net"] for r in checked
              if not (r["arrays_identical"] and r["openface_sha256"] == r["bundled_as_dat_sha256"])]
    if not checked:
        text = ("OpenFace's `.dat` files were not found here, so this run could not compare them with the weights "
                "mtcnn-lab bundles; the bundled nets' SHA-256s as `.dat` files are listed for a check elsewhere. ")
    elif differ:
        text = (f"The bundled weights are **not** OpenFace's for {_names(differ)}: arrays or SHA-256s differ, so "
                "results with `weights='zhang2016'` need not be OpenFace's. ")
    else:
        text = (f"OpenFace's {len(checked)} `.dat` files hold bit for bit the MIT-licensed weights that mtcnn-lab "
                "bundles: every array is equal and each net written back as `.dat` has the SHA-256 of OpenFace's "
                "file, so `weights='zhang2016'` gives OpenFace's results without its non-commercial files. ")
    negative = sum(s < 0 for s in slopes)
    text += ("The nets are small: " + ", ".join(f"{NET_LABELS.get(n, n)} {p:,}" for n, p in params.items())
             + f" parameters. {negative} of the {len(slopes)} PReLU slopes are negative (they range from "
             f"{min(slopes):.2f} to {max(slopes):.2f}), so a port must keep each channel's own slope"
             + (", which neither a ReLU nor one leaky slope reproduces. " if negative else ". "))
    return "**Conclusion.** " + text + "Per layer: " + _table("01_layers") + "; hashes: " + _table("01_bit_identity")


def divergence_conclusion(layer_rows: Sequence[Mapping], mistake_rows: Sequence[Mapping],
                          net_rows: Sequence[Mapping], reported: Mapping, swap_ratio: Sequence[float]) -> str:
    """Notebook 02's conclusion. ``layer_rows``: the numpy reference against each dumped C++ layer (``image``,
    ``net``, ``layer``, ``max_abs``), empty without the dumps; ``mistake_rows``: one per porting mistake on a
    1080p frame (``name``, combined mistakes joined by ``+``, ``max_abs``, ``mean_abs``, ``ch1_corr``,
    ``matches_report``); ``net_rows``: RNet/ONet under a mistake (``mistake``, ``from_cpp_in``,
    ``from_image``); ``reported``: the reported divergence (``max_abs``, ``mean_abs``, ``corr``);
    ``swap_ratio``: per layer-0 channel, std of the red-minus-blue part over std of the rest (a swap of R and B
    negates the first part only)."""
    if not layer_rows:
        text = "The C++ layer dumps were not available here, so this run did not re-check the reference against C++. "
    else:
        worst = max(layer_rows, key=lambda r: r["max_abs"])
        text = (f"The C++ does nothing special: the numpy reference matches all {len(layer_rows)} dumped C++ layers "
                f"within {worst['max_abs']:.1e}, square and non-square inputs alike. "
                if worst["max_abs"] <= NOISE_LEVEL else
                f"The numpy reference does **not** match the C++ layer dumps: max |Δ| {worst['max_abs']:.1e} at "
                f"{worst['image']} {worst['net']} {worst['layer']}, so the signatures below rest on an unchecked "
                "reference. ")
    singles = [r for r in mistake_rows if "+" not in r["name"]]
    combined = [r for r in mistake_rows if "+" in r["name"]]
    hits = [r for r in singles if r["matches_report"]]
    combined_hits = [r["name"] for r in combined if r["matches_report"]]
    also = (f" (as do {len(combined_hits)} of the {len(combined)} combinations of two mistakes tried)"
            if combined_hits else "")
    if hits:
        text += (f"Of the {len(singles)} single porting mistakes tried, only {_names([r['name'] for r in hits])} "
                 f"{'has' if len(hits) == 1 else 'have'} the reported signature{also}. On a 1080p frame, "
                 + "; ".join(f"`{r['name']}` gives max |Δ| {r['max_abs']:.2f}, mean |Δ| {r['mean_abs']:.3f} and "
                             f"channel-1 correlation {r['ch1_corr']:.2f}" for r in hits)
                 + f" (reported: {reported['max_abs']:.2f}, {reported['mean_abs']:.3f} and {reported['corr']:.2f}). ")
        flipped = [k for k, r in enumerate(swap_ratio) if r > 1]
        if len(flipped) == 1:
            k, others = flipped[0], [r for r in swap_ratio if r <= 1]
            text += (f"Channel {k} is the only layer-0 channel whose red-minus-blue part outweighs the rest (std "
                     f"ratio {swap_ratio[k]:.2f}, at most {max(others, default=0):.2f} elsewhere), so a swap of R and "
                     "B anti-correlates it alone. ")
        elif flipped:
            text += (f"In {len(flipped)} layer-0 channels ({', '.join(map(str, flipped))}) the red-minus-blue part "
                     "outweighs the rest, so a swap of R and B anti-correlates each of them. ")
        under = [r for r in net_rows if r["mistake"] == hits[0]["name"]]
        if under:
            text += (f"Under `{hits[0]['name']}`, RNet and ONet fed the dumped C++ input stay within "
                     f"{max(r['from_cpp_in'] for r in under):.0e} of C++ but move by up to "
                     f"{max(r['from_image'] for r in under):.2f} on crops they cut themselves: the dumps are "
                     "recorded after OpenFace's own channel reordering, so a port checked on them sees RNet and ONet "
                     "match. ")
    else:
        text += (f"None of the {len(singles)} single porting mistakes tried has the reported signature"
                 + (f"; only combinations do: {_names(combined_hits)}. " if combined_hits else
                    ", so this run does not explain the reported divergence. "))
    return "**Conclusion.** " + text + "Per mistake: " + _table("02_mistake_signatures_1080p")


def conversion_conclusion(size_rows: Sequence[Mapping], layer_rows: Sequence[Mapping],
                          coreml_rows: Sequence[Mapping], opset: int, pnet_shapes: int | None, input_source: str,
                          coreml_error: str | None, coreml_reason: str) -> str:
    """Notebook 03's conclusion. ``size_rows``: one per model file (``format`` ``onnx``/``coreml``,
    ``precision``, ``bytes``); ``layer_rows``: each runtime's layers against the numpy reference (``backend``,
    ``precision`` ``fp32``/``fp16``, ``net``, ``layer``, ``output`` for the net's output, ``max_abs``);
    ``coreml_rows``: the saved Core ML programs' outputs (``precision``, ``net``, ``executed_by``,
    ``max_abs``); ``pnet_shapes``: Core ML PNet's enumerated input shapes; ``input_source``: what the nets
    were fed (``random inputs ...`` without a data set); ``coreml_error``: why conversion failed, if it did."""
    kib: dict[tuple[str, str], float] = {}
    for r in size_rows:
        kib[(r["format"], r["precision"])] = kib.get((r["format"], r["precision"]), 0) + r["bytes"] / 1024
    text = (f"PNet, RNet and ONet export to ONNX (opset {opset})"
            + (f" but Core ML conversion failed here ({coreml_error})" if coreml_error else
               f" and convert to Core ML ML programs (PNet with {pnet_shapes} enumerated input shapes)")
            + f"; all three take {kib[('onnx', 'fp32')]:.0f} KiB as ONNX FP32 and {kib[('onnx', 'fp16')]:.0f} KiB "
            "as ONNX FP16. ")
    inputs = "random inputs (no data set here)" if input_source.startswith("random") else \
        f"real network inputs ({input_source.split(':')[0]})"
    fp32 = [r for r in layer_rows if r["precision"] == "fp32"]
    if fp32:
        worst = max(fp32, key=lambda r: r["max_abs"])
        runtimes = _names(sorted({r["backend"] for r in fp32}))
        text += (f"On {inputs}, every layer of {runtimes} stays within {worst['max_abs']:.1e} of the numpy "
                 f"reference (worst: `{worst['backend']}` {worst['net']} {worst['layer']}), float32 rounding noise. "
                 if worst["max_abs"] <= NOISE_LEVEL else
                 f"On {inputs}, `{worst['backend']}` departs from the numpy reference by {worst['max_abs']:.1e} at "
                 f"{worst['net']} {worst['layer']}: more than float32 rounding, a conversion to look into. ")
    else:
        text += "No FP32 runtime besides numpy was available here to compare with the reference. "
    fp16 = [r for r in layer_rows if r["precision"] == "fp16" and r["layer"] == "output"]
    if fp16:
        worst = max(fp16, key=lambda r: r["max_abs"])
        text += (f"The all-FP16 ONNX models move the nets' outputs by up to {worst['max_abs']:.1e} "
                 f"({NET_LABELS.get(worst['net'], worst['net'])}): FP16 rounding, whose effect on the detected "
                 "faces notebook 04 measures. ")
    if coreml_rows:
        bounds = {}
        for r in coreml_rows:
            bounds[r["precision"]] = max(bounds.get(r["precision"], 0.0), r["max_abs"])
        text += (f"The saved Core ML programs, run by {coreml_rows[0]['executed_by']}, differ from the reference by "
                 "at most " + " and ".join(f"{v:.1e} {PRECISION_LABELS.get(p, p)}" for p, v in bounds.items()) + ". ")
    elif not coreml_error:
        text += f"The Core ML programs were not run here ({coreml_reason.split(';')[0]}). "
    return "**Conclusion.** " + text + "Per layer: " + _table("03_layer_diffs") + "; sizes: " + _table("03_model_sizes")


def _lost(row: Mapping) -> int:
    return row["faces_a"] - row["matched"]


def _score(row: Mapping) -> tuple:
    return row["images_same_count"], -_lost(row), row["iou_mean"] or 0.0


def _worst(rows: Sequence[Mapping], key: str, lowest: bool) -> float | None:
    """The lowest (or highest) measured ``key`` of ``rows``; None when none was measured."""
    values = [r[key] for r in rows if r[key] is not None]
    return (min(values) if lowest else max(values)) if values else None


def fp16_conclusion(summary_rows: Sequence[Mapping], n_images: int, dataset: str, culprits: Sequence[str],
                    rescued: Sequence[str], moved: int, proposals: int, quick: bool, coreml_reason: str) -> str:
    """Notebook 04's conclusion. ``summary_rows``: one agreement summary with FP32 per variant
    (``numpy-fp16``, ``numpy-fp16-all``, ``onnx-fp16``, ``onnx-fp16-all``, and ``coreml`` /
    ``coreml-fp16-all`` where the saved Core ML programs ran, with ``executed_by``: Core ML, or off a Mac
    mtcnn-lab's MIL executor): ``images_same_count``, ``faces_a``, ``matched``, ``iou_mean``,
    ``iou_min``, ``max_px_error`` (px). ``culprits``: images on which all-FP16 departs from FP32; ``rescued``:
    those that agree again with PNet in FP32; ``moved`` of ``proposals``: PNet proposals moved by FP16 offsets
    alone."""
    row = {r["variant"]: r for r in summary_rows}
    n = n_images
    default, fp16_all = [row["onnx-fp16"], row["numpy-fp16"]], [row["onnx-fp16-all"], row["numpy-fp16-all"]]

    def counts(rows: Sequence[Mapping]) -> str:
        return ", ".join(f"`{r['variant']}` finds FP32's number of faces on {r['images_same_count']}/{n} images and "
                         f"loses {_count(_lost(r), 'face')}" for r in rows)

    text = "The default policy (PNet FP32, RNet and ONet FP16) "
    if all(r["images_same_count"] == n and _lost(r) == 0 for r in default):
        text += f"keeps every face on all {n} images of {dataset}, with ONNX Runtime and in the emulation alike: "
    else:
        text += f"does **not** keep every face on the {n} images of {dataset}: " + counts(default) + "; "
    text += (f"IoU with FP32 at least {number(_worst(default, 'iou_min', True), '.4f')}, boxes within "
             f"{number(_worst(default, 'max_px_error', False), '.2f')} px. ")
    share = f"{moved / proposals:.1%}" if proposals else "n/a"
    if any(_score(a) < _score(b) for a, b in zip(fp16_all, default, strict=True)):
        text += ("All three nets in FP16 do worse: " + counts(fp16_all)
                 + f"; IoU falls to {number(_worst(fp16_all, 'iou_min', True), '.4f')} and boxes move by up to "
                 f"{number(_worst(fp16_all, 'max_px_error', False), '.1f')} px. ")
        every = len(rescued) == len(culprits)
        text += (f"PNet is {'the' if every else 'a'} cause: of the {_count(len(culprits), 'image')} on which all-FP16 "
                 f"departs from FP32, {'all' if every else 'only'} {len(rescued)} agree again once PNet alone runs "
                 f"FP32, and FP16 box offsets alone move {moved} of {proposals} PNet proposals ({share}) by a pixel. "
                 "**PNet stays FP32.** ")
    else:
        text += (f"On this {'quick subset' if quick else 'data set'} all three nets in FP16 are not measurably "
                 f"worse, although FP16 box offsets alone already move {moved} of {proposals} PNet proposals "
                 f"({share}) by a pixel" + ("; run the full data set to measure what that costs. " if quick else ". "))
    ran = [row[v] for v in ("coreml", "coreml-fp16-all") if v in row]
    if ran:
        text += (f"Run by {ran[0].get('executed_by') or 'Core ML'}, the saved Core ML programs give: " + counts(ran)
                 + f" (worst IoU {number(_worst(ran, 'iou_min', True), '.4f')}). ")
    else:
        text += (f"The Core ML programs were not run here ({coreml_reason.split(';')[0]}): the numpy emulation stands "
                 "in for them. ")
    return "**Conclusion.** " + text + "Per policy: " + _table("04_fp16_end_to_end") + "; per image: " + _table(
        "04_fp16_per_image")


def parity_conclusion(summary: Sequence[Mapping], n_frames: int, n_groups: int, n_cpp_faces: int,
                      skipped: Mapping[str, str], quick: bool) -> str:
    """Notebook 05's conclusion. ``summary``: one row per backend (``backend``, ``images``,
    ``images_agree``, ``matched``, ``iou_min``, ``centre_max_abs``, ``size_max_abs`` in px); FP16 policies
    have ``fp16`` in their name. ``skipped``: backend -> why it did not run; ``quick``: a subset of the frames."""
    def box_px(r: Mapping) -> float:
        return max(r["centre_max_abs"] or 0.0, r["size_max_abs"] or 0.0)

    def agrees(r: Mapping) -> bool:
        return r["images_agree"] == r["images"]

    def shortfall(rows: Sequence[Mapping]) -> str:
        return ", ".join(f"`{r['backend']}` agrees on {r['images_agree']}/{r['images']}" for r in rows
                         if not agrees(r))

    fp32 = [r for r in summary if "fp16" not in r["backend"]]
    fp16 = [r for r in summary if "fp16" in r["backend"]]
    text = (f"On {n_frames} frames of {n_groups} groups ({n_cpp_faces} faces found by C++ OpenFace"
            + ("; a quick subset of the evaluation set" if quick else "") + "), ")
    if not fp32:
        text += "no FP32 backend ran. "
    else:
        worst = max(fp32, key=box_px)
        same = sum(agrees(r) for r in fp32)
        text += (f"all {len(fp32)} FP32 backends ({_names([r['backend'] for r in fp32])}) find exactly C++'s faces "
                 "on every frame" if same == len(fp32) else
                 f"**not every FP32 backend finds exactly C++'s faces**: {same} of {len(fp32)} do on every frame, "
                 + shortfall(fp32) + " frames")
        text += (f"; their boxes differ from C++'s by at most {box_px(worst):.1e} px (`{worst['backend']}`)"
                 + (", float32 rounding of the box arithmetic. " if box_px(worst) <= BOUNDS["box_px"] else ". "))
    if fp16:
        worst = min(fp16, key=lambda r: r["iou_min"] if r["iou_min"] is not None else -1.0)
        text += ((f"The {len(fp16)} FP16 policies agree on every frame" if all(map(agrees, fp16)) else
                  "The FP16 policies do **not** all agree: " + shortfall(fp16) + " frames")
                 + f", with IoU at least {number(worst['iou_min'], '.4f')} (`{worst['backend']}`) and boxes within "
                 f"{max(map(box_px, fp16)):.2f} px. ")
    if skipped:
        text += "Not run here: " + ", ".join(f"`{k}` ({v})" for k, v in skipped.items()) + ". "
    return ("**Conclusion.** " + text + "Per backend: " + _table("05_summary") + "; per face, unmatched ones "
            "included: " + _table("05_per_face"))


def benchmark_conclusion(runs: Sequence[Mapping], cpp_row: Mapping | None, n_frames: int, cpu_count: int,
                         coreml_swept: bool, have_pymtcnn: bool, quick: bool) -> str:
    """Notebook 06's conclusion. ``runs``: one per backend and thread count (``backend``, ``threads``,
    ``sum_of_medians_ms`` over the ``n_frames`` frames, ``fps``, ``stage_share``: stage -> share of the time);
    ``cpp_row``: C++ OpenFace's 1-thread timings of the same frames (``sum_of_medians_ms``), None when the
    reference has none; ``coreml_swept``: the Core ML compute-unit sweep ran (macOS)."""
    one = [r for r in runs if r["threads"] == 1] or list(runs)
    first = min(one, key=lambda r: r["sum_of_medians_ms"])
    ms = first["sum_of_medians_ms"]
    text = (f"With {first['threads']} thread{'s' if first['threads'] > 1 else ''}, the fastest backend here is "
            f"`{first['backend']}`: {ms:.0f} ms for the {n_frames} frames ({first['fps']:.0f} FPS)")
    if cpp_row:
        cpp = cpp_row["sum_of_medians_ms"]
        text += (f", against {cpp:.0f} ms for C++ OpenFace's 1-thread reference timings: "
                 + (f"{cpp / ms:.2f}× faster than C++. " if ms < cpp else f"C++ is {ms / cpp:.2f}× faster. "))
    else:
        text += "; the reference has no C++ timings for these frames, so the port is not compared with C++. "
    best = min(runs, key=lambda r: r["sum_of_medians_ms"])
    if best["threads"] != first["threads"]:
        text += (f"With {best['threads']} threads on this {cpu_count}-core machine, `{best['backend']}` needs "
                 f"{best['sum_of_medians_ms']:.0f} ms ({best['fps']:.0f} FPS). ")
    numpy_row = next((r for r in one if r["backend"] == "numpy"), None)
    if numpy_row:
        stage, share = max(numpy_row["stage_share"].items(), key=lambda kv: kv[1])
        text += f"In the numpy reference, `{stage}` takes the largest share of the time ({share:.0%}). "
    missing = ([] if coreml_swept else ["the Core ML compute-unit sweep (it needs macOS)"]) + \
        ([] if have_pymtcnn else ["pymtcnn (not installed)"])
    if missing:
        text += "Not measured here: " + " and ".join(missing) + ". "
    if quick:
        text += (f"This quick run timed only {_names(sorted({r['backend'] for r in runs}))}; the full run times every "
                 "backend available. ")
    return ("**Conclusion.** " + text + "Per backend and thread count: " + _table("06_latency")
            + ("; Core ML compute units: " + _table("06_coreml_compute_units") if coreml_swept else "")
            + "; share of the float32 peak: " + _table("06_efficiency"))


def decoder_conclusion(rows: Sequence[Mapping], baseline: str, clip: str) -> str:
    """Notebook 07's conclusion. ``rows``: one per decode profile against ``baseline`` (``profile``,
    ``picture``: ``upright`` or how far it is turned, ``frames``, ``faces``, ``baseline_faces``,
    ``frames_same_count``, ``matched``, ``iou_mean``, ``max_px``), boxes compared in upright coordinates."""
    others = [r for r in rows if r["profile"] != baseline]
    same = [r for r in others if r["faces"] == r["matched"] == r["baseline_faces"] and r["max_px"] == 0.0]
    turned = [r for r in others if r["picture"] != "upright"]
    moved = [r for r in others if r not in same and r not in turned]
    faces = others[0]["baseline_faces"] if others else 0
    text = (f"On {clip}, {_names([r['profile'] for r in same])} find exactly the {baseline} decode's {faces} faces, "
            "box for box. " if same else
            f"On {clip}, no profile finds exactly the {baseline} decode's {faces} faces. ")
    if turned:
        text += (f"{_names([r['profile'] for r in turned])} hand OpenFace a turned picture "
                 f"({', '.join(r['picture'] for r in turned)}) and find "
                 + " and ".join(str(r["faces"]) for r in turned)
                 + f" faces instead of {faces}: their results cannot be compared with upright ones. ")
    for r in moved:
        text += (f"`{r['profile']}` gives the upright picture but other pixels: same count on "
                 f"{r['frames_same_count']}/{r['frames']} frames, yet mean IoU {number(r['iou_mean'], '.3f')} and "
                 f"boxes up to {number(r['max_px'], '.1f')} px away. ")
    text += ((f"So decode phone video as {_names([r['profile'] for r in same])} do, and compare" if same else
              "So compare") + " only results decoded with the same profile (every result of mtcnn-lab records it). ")
    return "**Conclusion.** " + text + "Per profile: " + _table("07_decode_profiles")
