"""MAC counts against sums worked out by hand from the layer table, and the efficiency rows."""

from __future__ import annotations

import math

import pytest

from mtcnn_lab.lab.efficiency import (
    efficiency_markdown,
    efficiency_rows,
    efficiency_table,
    gemm_peak,
    net_macs,
    trace_macs,
)

# By hand from the layer shapes (tests/test_weights.py checks those shapes against the files):
# RNet 24x24: conv 3->28 k3 -> 22x22; pool 3/2 -> round(9.5)+1 = 11; conv 28->48 k3 -> 9x9; pool 3/2 -> 4;
# conv 48->64 k2 -> 3x3; fc 576->128; then the output heads (head_macs)
RNET = 22 * 22 * 28 * 3 * 9 + 9 * 9 * 48 * 28 * 9 + 3 * 3 * 64 * 48 * 4 + 128 * 576
# ONet 48x48: conv 3->32 k3 -> 46; pool 3/2 -> 23; conv 32->64 k3 -> 21; pool 3/2 -> 10; conv 64->64 k3 -> 8;
# pool 2/2 -> 4; conv 64->128 k2 -> 3; fc 1152->256; then the output heads
ONET = 46 * 46 * 32 * 3 * 9 + 21 * 21 * 64 * 32 * 9 + 8 * 8 * 64 * 64 * 9 + 3 * 3 * 128 * 64 * 4 + 256 * 1152
# PNet 12x12: conv 3->10 k3 -> 10; pool 2/2 -> 5; conv 10->16 k3 -> 3; conv 16->32 k3 -> 1
PNET_12 = 10 * 10 * 10 * 3 * 9 + 3 * 3 * 16 * 10 * 9 + 1 * 1 * 32 * 16 * 9


def head_macs(spec) -> int:
    """The last FC layers' MACs, read off the weight shapes (the output heads)."""
    fcs = [layer for layer in spec.layers if layer.kind == "fc"]
    return sum(math.prod(layer.weight.shape) for layer in fcs[1 if spec.name != "pnet" else 0:])


def test_net_macs_equal_the_sums_worked_out_by_hand(bundled_weights):
    nets = bundled_weights.nets()
    assert net_macs(nets["pnet"], 12, 12) == PNET_12 + head_macs(nets["pnet"])
    assert net_macs(nets["rnet"], 24, 24) == RNET + head_macs(nets["rnet"])
    assert net_macs(nets["onet"], 48, 48) == ONET + head_macs(nets["onet"])
    # PNet on a larger level: every layer's work grows with the output positions
    # conv 3->10 -> 30x40; pool -> 15x20; conv 10->16 -> 13x18; conv 16->32 -> 11x16; heads per position
    level = 30 * 40 * 10 * 27 + 13 * 18 * 16 * 90 + 11 * 16 * 32 * 144 + 11 * 16 * head_macs(nets["pnet"])
    assert net_macs(nets["pnet"], 32, 42) == level


def test_trace_macs_count_every_pyramid_level_and_crop(bundled_weights):
    nets = bundled_weights.nets()
    trace = {"pnet_scales": [{"pyr_wh": [42, 32]}, {"pyr_wh": [12, 12]}],
             "rnet_input_boxes": [[0, 0, 30, 30]] * 7, "onet_input_boxes": [[0, 0, 30, 30]] * 2}
    macs = trace_macs(trace, bundled_weights)
    assert macs == {"pnet": net_macs(nets["pnet"], 32, 42) + net_macs(nets["pnet"], 12, 12),
                    "rnet": 7 * net_macs(nets["rnet"], 24, 24), "onet": 2 * net_macs(nets["onet"], 48, 48)}


def test_efficiency_rows_divide_macs_by_seconds_and_the_peak():
    rows = efficiency_rows({"pnet": 4e9, "rnet": 1e9, "onet": 3e9}, {"pnet": 2.0, "rnet": 0.5, "onet": 0.0}, 8.0)
    assert [r["net"] for r in rows] == ["pnet", "rnet", "onet"]
    assert rows[0]["gmacs"] == pytest.approx(2.0) and rows[0]["share_of_peak"] == pytest.approx(0.25)
    assert rows[1]["gmacs"] == pytest.approx(2.0)
    assert math.isnan(rows[2]["gmacs"])  # a net that never ran has no rate


def test_gemm_peak_reports_each_kernel_and_the_peak_within_the_cap():
    rates = gemm_peak(1, size=256, repeats=2)
    assert {"numpy", "openvino_conv1x1", "openvino_matmul", "peak", "machine_peak"} <= set(rates)
    assert all(v > 0 for v in rates.values())
    assert rates["peak"] == max(rates["numpy"], rates["openvino_conv1x1"])
    assert rates["machine_peak"] == max(rates["numpy"], rates["openvino_conv1x1"], rates["openvino_matmul"])
    assert gemm_peak(1, numpy_within_cap=False, size=256, repeats=2)["peak"] > 0


def test_efficiency_table_has_a_row_per_level_run_and_net():
    run = {"backend": "openvino-cpu", "threads": 2, "gemm_gmacs": {"peak": 10.0},
           "nets": efficiency_rows({"pnet": 1e9, "rnet": 2e9, "onet": 3e9}, {"pnet": 1, "rnet": 1, "onet": 1}, 10.0)}
    rows = efficiency_table({"avx2": {"runs": [run]}, "avx512": {"runs": [run, dict(run, threads=1)]}})
    assert len(rows) == 9 and rows[0] == {"level": "avx2", "backend": "openvino-cpu", "threads": 2, "net": "pnet",
                                          "gmacs": 1.0, "peak_gmacs": 10.0, "share_of_peak": 0.1}
    assert [r["threads"] for r in rows[3:]] == [2, 2, 2, 1, 1, 1]


def test_efficiency_markdown_puts_a_net_per_row_and_a_run_per_column():
    rows = [{"level": "avx2", "threads": 1, "net": "pnet", "gmacs": 5.0, "peak_gmacs": 50.0, "share_of_peak": 0.1},
            {"level": "avx2", "threads": 2, "net": "pnet", "gmacs": float("nan"), "peak_gmacs": 90.0,
             "share_of_peak": float("nan")}]
    assert efficiency_markdown(rows).splitlines() == [
        "| net | avx2, 1 thread | avx2, 2 threads |", "|---|---|---|", "| pnet | 10% (5 / 50) | – |"]
