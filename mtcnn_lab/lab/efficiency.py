"""How much of the machine's float32 throughput each net gets.

The work of a net call is counted in multiply-accumulates (MACs) from the layer shapes: a valid
convolution of ``n_in`` to ``n_out`` maps with a ``kh`` x ``kw`` kernel on an ``h'`` x ``w'`` output
does ``h' w' n_out n_in kh kw``; a fully connected layer ``n_out n_in`` per position (PNet's run as 1x1
convolutions over the map); PReLU and max-pooling count none. A detection trace gives the calls of one
image: the pyramid level sizes (PNet) and the crop counts (RNet, ONet). The achieved rate of a net,
MACs over the seconds the cascade spent in it (:class:`~mtcnn_lab.cascade.timer.StageTimer`), is set
against a float32 GEMM peak measured on the same machine at the same thread count, in the same run.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping

import numpy as np
from threadpoolctl import threadpool_limits

from mtcnn_lab.nets.reference import pool_output_size
from mtcnn_lab.weights.netspec import CROP_SIZES, FC, Conv, MaxPool, NetSpec, WeightSet


def net_macs(spec: NetSpec, height: int, width: int) -> int:
    """MACs of one ``height`` x ``width`` px input through ``spec``."""
    channels, h, w, total = 3, height, width, 0
    for layer in spec.layers:
        if isinstance(layer, Conv):
            n_out, n_in, kh, kw = layer.weight.shape
            h, w = h - kh + 1, w - kw + 1
            total += h * w * n_out * n_in * kh * kw
            channels = n_out
        elif isinstance(layer, MaxPool):
            h = pool_output_size(h, layer.kernel_y, layer.stride_y)
            w = pool_output_size(w, layer.kernel_x, layer.stride_x)
        elif isinstance(layer, FC):
            n_out, n_in = layer.weight.shape
            if n_in != channels:  # the first FC of RNet/ONet flattens the maps
                h = w = 1
            total += h * w * n_out * n_in
            channels = n_out
    return int(total)


def trace_macs(trace: Mapping, weights: WeightSet) -> dict[str, int]:
    """MACs per net (``pnet``, ``rnet``, ``onet``) spent on one image, from its ``Detections.trace``."""
    nets = weights.nets()
    pnet = sum(net_macs(nets["pnet"], level["pyr_wh"][1], level["pyr_wh"][0]) for level in trace["pnet_scales"])
    crops = {"rnet": len(trace["rnet_input_boxes"]), "onet": len(trace["onet_input_boxes"])}
    return {"pnet": pnet, **{net: n * net_macs(nets[net], CROP_SIZES[net], CROP_SIZES[net])
                             for net, n in crops.items()}}


def _best_seconds(run, repeats: int) -> float:
    run()  # warm-up: first-touch pages, thread pools
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def _openvino_rate(build, inputs: np.ndarray, macs: float, threads: int, repeats: int) -> float:
    import openvino

    x = openvino.opset13.parameter(openvino.PartialShape(list(inputs.shape)), np.float32, name="x")
    config = {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": threads}
    compiled = openvino.Core().compile_model(openvino.Model([build(x)], [x], "gemm"), "CPU", config)
    request = compiled.create_infer_request()
    return macs / _best_seconds(lambda: request.infer({0: inputs}, share_inputs=True), repeats) / 1e9


def gemm_peak(threads: int, numpy_within_cap: bool = True, size: int = 1024, repeats: int = 7) -> dict[str, float]:
    """float32 GEMM throughput in GMAC/s (MACs over the best of ``repeats`` calls) at ``threads`` threads:

    * ``numpy``: ``size`` x ``size`` matrices through numpy's BLAS;
    * ``openvino_conv1x1``: the same product as a 1x1 convolution compiled by OpenVINO's CPU plugin, which
      runs it with oneDNN, the kernels of the default backend's convolutions (they honour an ISA cap);
    * ``openvino_matmul``: as a MatMul, which OpenVINO runs with kernels of its own (they do not).

    ``peak``, the figure efficiency is judged against, is the larger of ``openvino_conv1x1`` and, unless
    ``numpy_within_cap`` is False (numpy's BLAS runs kernels above the ISA cap in force), ``numpy``;
    ``machine_peak`` the largest of all. OpenVINO's figures are absent where it is not installed."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size)).astype(np.float32)
    b = rng.standard_normal((size, size)).astype(np.float32)
    macs = float(size) ** 3
    rates = {}
    with threadpool_limits(threads):
        rates["numpy"] = macs / _best_seconds(lambda: a @ b, repeats) / 1e9
    try:
        from openvino import opset13 as ops
    except ImportError:
        ops = None
    if ops is not None:
        side = int(round(size ** 0.5))  # the rows of a as a side x side map of size channels
        maps = np.ascontiguousarray(a[:side * side].T.reshape(1, size, side, side))
        kernel = ops.constant(b.T.reshape(size, size, 1, 1).copy())
        rates["openvino_conv1x1"] = _openvino_rate(
            lambda x: ops.convolution(x, kernel, [1, 1], [0, 0], [0, 0], [1, 1]), maps,
            float(side * side) * size * size, threads, repeats)
        rates["openvino_matmul"] = _openvino_rate(
            lambda x: ops.matmul(x, ops.constant(b), False, False), a, macs, threads, repeats)
    machine_peak = max(rates.values())
    rates["peak"] = max(rates["numpy"] if numpy_within_cap else 0.0, rates.get("openvino_conv1x1", 0.0))
    rates["machine_peak"] = machine_peak
    return rates


def efficiency_rows(macs: Mapping[str, int], seconds: Mapping[str, float], peak_gmacs: float) -> list[dict]:
    """One row per net: ``macs`` (total), ``seconds`` (in its stage), ``gmacs`` (achieved GMAC/s) and
    ``share_of_peak`` (achieved over ``peak_gmacs``)."""
    rows = []
    for net in ("pnet", "rnet", "onet"):
        rate = macs[net] / seconds[net] / 1e9 if seconds.get(net) else float("nan")
        rows.append({"net": net, "macs": int(macs[net]), "seconds": float(seconds.get(net, 0.0)), "gmacs": rate,
                     "share_of_peak": rate / peak_gmacs})
    return rows


def measure_efficiency(images: Mapping[str, np.ndarray], backend: str = "auto", threads: int = 1,
                       repeats: int = 3, weights: str | WeightSet = "auto", numpy_within_cap: bool = True) -> dict:
    """Each net's achieved GMAC/s and share of the GEMM peak over ``images`` (BGR uint8), with
    ``MTCNN(backend, weights, threads)`` and BLAS/OpenCV pinned to ``threads``. A net's seconds are the
    per-image medians over ``repeats`` timed detections, after two untimed ones (which also compile
    OpenVINO's fixed-shape PNet models), summed; the peak is the larger of two
    :func:`gemm_peak` measurements (``numpy_within_cap`` passed on), before and after the detections."""
    from mtcnn_lab.cascade.timer import StageTimer
    from mtcnn_lab.detector import MTCNN
    from mtcnn_lab.lab.bench.timing import pinned_threads

    macs = {"pnet": 0, "rnet": 0, "onet": 0}
    seconds = {"pnet": 0.0, "rnet": 0.0, "onet": 0.0}
    with MTCNN(backend=backend, weights=weights, threads=threads) as detector, pinned_threads(threads):
        before = gemm_peak(threads, numpy_within_cap)
        for image in images.values():
            for net, n in trace_macs(detector.detect(image, trace=True).trace, detector.weights).items():
                macs[net] += n
            detector.detect(image)
            timers = [StageTimer() for _ in range(repeats)]
            for timer in timers:
                detector.detect(image, timer=timer)
            for net in seconds:
                seconds[net] += float(np.median([t.seconds.get(net, 0.0) for t in timers]))
        after = gemm_peak(threads, numpy_within_cap)
    peak = {kind: max(before[kind], after[kind]) for kind in before}
    return {"backend": detector.backend.name, "threads": threads, "images": len(images), "repeats": repeats,
            "gemm_gmacs": peak, "nets": efficiency_rows(macs, seconds, peak["peak"])}


def efficiency_table(levels: Mapping[str, Mapping]) -> list[dict]:
    """Rows ``level, backend, threads, net, gmacs, peak_gmacs, share_of_peak`` from runs of
    :func:`measure_efficiency` grouped by ISA level (``{level: {"runs": [...]}}``, the ``levels`` of
    ``results/bench/efficiency.json``)."""
    return [{"level": level, "backend": run["backend"], "threads": run["threads"], "net": row["net"],
             "gmacs": row["gmacs"], "peak_gmacs": run["gemm_gmacs"]["peak"], "share_of_peak": row["share_of_peak"]}
            for level, entry in levels.items() for run in entry["runs"] for row in run["nets"]]


def efficiency_markdown(rows: list[dict]) -> str:
    """:func:`efficiency_table` rows as a Markdown table: a row per net, a column per level and thread
    count, each cell ``share of peak (GMAC/s achieved / GMAC/s peak)``."""
    from mtcnn_lab.lab.parity import markdown_table

    summary = [dict(row, run=f"{row['level']}, {row['threads']} thread{'s' if row['threads'] > 1 else ''}")
               for row in rows]

    def cell(row: dict | None) -> str:
        if row is None or not math.isfinite(row["gmacs"]):
            return "–"
        return f"{row['share_of_peak']:.0%} ({row['gmacs']:.0f} / {row['peak_gmacs']:.0f})"

    return markdown_table(summary, index="net", columns="run", cell=cell)
