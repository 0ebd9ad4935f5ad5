"""A mistake's signature: how its layer-0 output differs from the correct one, against the reported numbers."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from mtcnn_lab.lab.divergence.mistakes import INVESTIGATED, Array, available, get_mistake, layer0
from mtcnn_lab.nets.reference import apply_layer
from mtcnn_lab.weights.netspec import Conv, NetSpec, WeightSet

REPORTED = {"max_abs": 8.86, "mean_abs": 0.153, "channel": 1, "corr": -0.72, "level_hw": (216, 384)}
"""The divergence the earlier port reported for PNet ``l00_conv`` (channel index 0-based)."""


def _pearson(a: Array, b: Array) -> float:
    """Pearson correlation; NaN when either map is constant up to float32 rounding."""
    a, b = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    if any(v.std() <= 1e-6 * max(1.0, float(np.abs(v).max(initial=0.0))) for v in (a, b)):
        return float("nan")
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


def divergence_signature(ours: Array, truth: Array) -> dict:
    """How ``ours`` (C, H, W) differs from ``truth``: max/mean |diff| and per-channel correlations.

    * ``corr``: Pearson correlation of our channel-c map with the true channel-c map (the definition
      that reproduces the reported -0.72: only the channel a mistake inverts goes negative);
    * ``corr_diff``: correlation of the difference (ours - truth) with the true map;
    * ``rel_mean``: mean |diff| over mean |truth| (comparable across images of different contrast).
    """
    if ours.shape != truth.shape:
        raise ValueError(f"shapes differ: {ours.shape} vs {truth.shape}")
    ours64, truth64 = ours.astype(np.float64), truth.astype(np.float64)
    diff = ours64 - truth64
    corr = [_pearson(ours64[c], truth64[c]) for c in range(truth.shape[0])]
    corr_diff = [_pearson(diff[c], truth64[c]) for c in range(truth.shape[0])]
    mean_abs = float(np.abs(diff).mean())
    return {
        "max_abs": float(np.abs(diff).max()),
        "mean_abs": mean_abs,
        "rel_mean": mean_abs / float(np.abs(truth64).mean()),
        "corr": corr,
        "corr_diff": corr_diff,
        "max_abs_per_channel": [float(v) for v in np.abs(diff).max(axis=(1, 2))],
    }


def reproduces_report(sig: dict, channel: int = REPORTED["channel"]) -> bool:
    """The reported *character*: max |diff| a few units (3-20), mean 0.05-0.4, and channel
    ``channel`` (0-based) the only strongly anti-correlated one (corr <= -0.4, others >= 0.5)."""
    corr = sig["corr"]
    others = [c for i, c in enumerate(corr) if i != channel]
    return (3.0 <= sig["max_abs"] <= 20.0 and 0.05 <= sig["mean_abs"] <= 0.4
            and corr[channel] <= -0.4 and min(others) >= 0.5)


def investigate(image: Array, scale: float, weights: WeightSet, truth: Array | None = None,
                mistakes: Iterable[str] | None = None) -> list[dict]:
    """One row per mistake: name, description, stages, and its signature against ``truth``.

    ``truth`` defaults to the correct pipeline on the same image (our reference, validated against
    C++); pass a C++ ``l00_conv`` dump to compare with C++ directly. Mistakes whose optional
    package is missing are skipped. Rows carry ``ch1_corr`` and ``matches_report`` for tables.
    """
    if truth is None:
        truth = layer0(image, scale, weights)
    rows = []
    for name in INVESTIGATED if mistakes is None else mistakes:
        m = get_mistake(name)
        if m is not None and not available(m):
            continue
        sig = divergence_signature(layer0(image, scale, weights, m), truth)
        rows.append({"name": name or "none", "description": m.description if m else "correct pipeline",
                     "stages": ",".join(m.stages) if m else "", **sig,
                     "ch1_corr": sig["corr"][1], "ch1_corr_diff": sig["corr_diff"][1],
                     "matches_report": reproduces_report(sig)})
    return rows


def format_table(rows: list[dict]) -> str:
    """A plain-text table of :func:`investigate` rows (name, max, mean, corr per channel)."""
    lines = [f"{'mistake':28s} {'max':>7s} {'mean':>7s} {'ch1 r':>6s} {'ch1 rd':>6s} match  corr(ours, truth) ch0..9"]
    for r in rows:
        corr = " ".join(f"{c:+.2f}" for c in r["corr"])
        lines.append(f"{r['name']:28s} {r['max_abs']:7.3f} {r['mean_abs']:7.4f} {r['ch1_corr']:+6.2f} "
                     f"{r['ch1_corr_diff']:+6.2f} {'yes' if r['matches_report'] else 'no ':5s}  {corr}")
    return "\n".join(lines)


def swap_parts(x: Array, weights: WeightSet | NetSpec) -> tuple[Array, Array]:
    """Split layer 0 of a correct (3, h, w) R,G,B input into ``A + C`` with ``B,G,R``-fed = ``A - C``.

    ``A`` uses the R/B-symmetric kernel ``(K_R + K_B) / 2`` on both R and B (plus ``K_G`` and the
    bias); ``C`` uses ``(K_R - K_B) / 2`` on R and its negative on B: the red-minus-blue response.
    Swapping R and B negates ``C`` only, so a channel whose ``C`` outweighs ``A`` (std) turns
    anti-correlated: ``corr(A - C, A + C) = (var A - var C) / (var A + var C)`` when A, C are uncorrelated.
    """
    pnet = weights.pnet if isinstance(weights, WeightSet) else weights
    conv = pnet.layers[0]
    k = conv.weight.astype(np.float64)
    sym, anti = k.copy(), np.zeros_like(k)
    sym[:, 0] = sym[:, 2] = (k[:, 0] + k[:, 2]) / 2
    anti[:, 0] = (k[:, 0] - k[:, 2]) / 2
    anti[:, 2] = -anti[:, 0]
    x = np.asarray(x, np.float32)[None]
    a = apply_layer(x, Conv(sym.astype(np.float32), conv.bias))[0]
    c = apply_layer(x, Conv(anti.astype(np.float32), np.zeros_like(conv.bias)))[0]
    return a, c


def colour_opponency(weights: WeightSet | NetSpec) -> list[dict]:
    """Per layer-0 channel: the sums of its R, G and B kernels (a red-vs-blue channel has opposite signs)."""
    pnet = weights.pnet if isinstance(weights, WeightSet) else weights
    sums = pnet.layers[0].weight.astype(np.float64).sum(axis=(2, 3))
    return [{"channel": c, "sum_r": float(r), "sum_g": float(g), "sum_b": float(b), "r_minus_b": float(r - b)}
            for c, (r, g, b) in enumerate(sums)]
