"""Which porting mistake explains the reported PNet layer-0 divergence?

An earlier port reported that PNet's first convolution differed from C++ OpenFace on a 384x216
pyramid level (a 1920x1080 frame at scale 0.2) with max |diff| 8.86, mean |diff| 0.153 and a
channel-1 correlation of -0.72, while RNet and ONet matched to 1e-6. OpenFace does nothing special
there (:mod:`mtcnn_lab.nets.reference` matches every dumped C++ layer), so the port must have made a
mistake. This module recomputes layer 0 under a list of plausible mistakes and measures each one's
*signature* against the correct values, so a notebook can show which mistake has the reported one.

The correct pipeline (``docs/openface_mtcnn.md`` §3, §5) has five stages, and a mistake replaces one or more of them:

1. ``resize``: float32 BGR image -> pyramid level (h, w, 3), ``cv2.resize`` INTER_LINEAR;
2. ``buffer``: how the resized (h, w, 3) buffer is read (correct: as it is);
3. ``normalise``: ``(v - 127.5) * 0.0078125`` on all three channels;
4. ``layout``: (h, w, 3) B,G,R -> network input (3, h, w) **R, G, B**;
5. ``kernel``: conv weights (n_out, n_in, kh, kw), a cross-correlation with rows = dy.

Mistake names can be combined with ``+`` (e.g. ``"bgr_input+resize_nearest"``) when they touch
different stages. ``fc_flatten_order`` touches none of them (layer 0 is unchanged); its effect on
RNet/ONet is measured by :func:`net_output_divergence`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from mtcnn_lab.nets.reference import apply_layer, fc_input
from mtcnn_lab.params import level_size
from mtcnn_lab.weights.netspec import FC, Conv, NetSpec, WeightSet

HD_SIZE = (1080, 1920)
"""(height, width) of the 1080p frames the earlier port was most likely fed."""

REPORTED = {"max_abs": 8.86, "mean_abs": 0.153, "channel": 1, "corr": -0.72, "level_hw": (216, 384)}
"""The divergence the earlier port reported for PNet ``l00_conv`` (channel index 0-based)."""

DUMPED_IMAGES = {
    "sample1": "samples/sample1.jpg",
    "sample2": "samples/sample2.jpg",
    "multi_face_f140": "samples/frames/multi_face_f140.png",
}
"""The images with C++ layer dumps, as paths under ``shared/``."""

Array = np.ndarray
Resize = Callable[[Array, tuple[int, int]], Array]


# --------------------------------------------------------------------------------------------
# the correct stages


def correct_resize(image_f32: Array, size: tuple[int, int]) -> Array:
    """OpenFace: ``cv2.resize`` INTER_LINEAR of the float32 BGR image to ``size = (h, w)``."""
    return cv2.resize(image_f32, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)


def correct_normalise(hwc: Array) -> Array:
    """OpenFace: ``(v - 127.5) * 0.0078125`` in float32 on every channel."""
    return (hwc.astype(np.float32) - np.float32(127.5)) * np.float32(0.0078125)


def correct_layout(hwc: Array) -> Array:
    """OpenFace: (..., h, w, 3) B,G,R -> (..., 3, h, w) R,G,B."""
    return np.ascontiguousarray(np.moveaxis(hwc[..., ::-1], -1, -3))


def _identity(x: Array) -> Array:
    return x


# --------------------------------------------------------------------------------------------
# mistaken stages


def _cv2_resize(flag: int) -> Resize:
    def resize(image_f32: Array, size: tuple[int, int]) -> Array:
        return cv2.resize(image_f32, (size[1], size[0]), interpolation=flag)
    return resize


def _torch_resize(antialias: bool, align_corners: bool) -> Resize:
    def resize(image_f32: Array, size: tuple[int, int]) -> Array:
        import torch
        import torch.nn.functional as F

        x = torch.from_numpy(np.ascontiguousarray(image_f32.transpose(2, 0, 1)))[None]
        y = F.interpolate(x, size=size, mode="bilinear", antialias=antialias, align_corners=align_corners)
        return y[0].numpy().transpose(1, 2, 0).astype(np.float32)
    return resize


def _pil_resize(image_f32: Array, size: tuple[int, int]) -> Array:
    from PIL import Image

    planes = [np.asarray(Image.fromarray(np.ascontiguousarray(image_f32[..., c]), mode="F")
                         .resize((size[1], size[0]), Image.Resampling.BILINEAR)) for c in range(3)]
    return np.stack(planes, axis=-1).astype(np.float32)


def _dsize_swapped(image_f32: Array, size: tuple[int, int]) -> Array:
    """``cv2.resize(img, (h, w))``: dsize given as numpy (rows, cols) instead of (width, height).

    OpenCV returns a (w, h, 3) image, squashed to the wrong aspect; the port then reshapes it to
    the (h, w, 3) it expects. On a square level both orders agree and nothing happens.
    """
    h, w = size
    return cv2.resize(image_f32, (h, w), interpolation=cv2.INTER_LINEAR).reshape(h, w, 3)


def _dsize_swapped_transposed(image_f32: Array, size: tuple[int, int]) -> Array:
    """As :func:`_dsize_swapped`, but the (w, h, 3) result is transposed back instead of reshaped."""
    h, w = size
    return cv2.resize(image_f32, (h, w), interpolation=cv2.INTER_LINEAR).transpose(1, 0, 2)


def _row_major_reshape(hwc: Array) -> Array:
    """The (h, w, 3) buffer read as (w, h, 3) (MATLAB/column-major thinking), transposed back.

    Equivalent per plane to ``plane.reshape(w, h).T``: a scramble for non-square levels, a plain
    transpose for square ones.
    """
    h, w, c = hwc.shape
    return np.ascontiguousarray(hwc.reshape(w, h, c).transpose(1, 0, 2))


def _column_major_read(hwc: Array) -> Array:
    """The C-order (h, w, 3) buffer unpacked in Fortran order (``order="F"``) as (h, w, 3)."""
    return np.ascontiguousarray(np.reshape(hwc.ravel(order="C"), hwc.shape, order="F"))


def _hwc_as_chw(hwc: Array) -> Array:
    """The interleaved (h, w, 3) B,G,R buffer reshaped (not transposed) to (3, h, w), then reversed."""
    h, w, c = hwc.shape
    return np.ascontiguousarray(hwc.reshape(c, h, w)[::-1])


def _bgr_layout(hwc: Array) -> Array:
    """(h, w, 3) -> (3, h, w) without reversing: B, G, R fed where OpenFace feeds R, G, B."""
    return np.ascontiguousarray(np.moveaxis(hwc, -1, -3))


def _first_channel_only(hwc: Array) -> Array:
    """OpenCV's ``(Mat - 127.5)`` then ``* 0.0078125`` as two steps: the subtraction hits channel 0 (B) only."""
    out = hwc.astype(np.float32).copy()
    out[..., 0] -= np.float32(127.5)
    return out * np.float32(0.0078125)


@dataclass(frozen=True)
class Mistake:
    """One porting mistake: the pipeline stages it replaces (``None`` keeps the correct stage).

    ``fc_flatten`` marks the RNet/ONet first-FC flattening mistake (NCHW ``reshape(-1)`` instead of
    OpenFace's channel, x, y order), which no PNet layer-0 stage sees.
    """

    name: str
    description: str
    resize: Resize | None = None
    buffer: Callable[[Array], Array] | None = None
    normalise: Callable[[Array], Array] | None = None
    layout: Callable[[Array], Array] | None = None
    kernel: Callable[[Array], Array] | None = None
    fc_flatten: bool = False
    needs: tuple[str, ...] = field(default=())

    @property
    def stages(self) -> tuple[str, ...]:
        """The names of the stages this mistake replaces."""
        names = ("resize", "buffer", "normalise", "layout", "kernel")
        return tuple(n for n in names if getattr(self, n) is not None) + (("fc_flatten",) if self.fc_flatten else ())

    @property
    def input_side(self) -> bool:
        """True when the mistake is in the pre-processing (invisible to a net fed the C++ ``in``)."""
        return any(s in self.stages for s in ("resize", "buffer", "normalise", "layout"))


MISTAKES: dict[str, Mistake] = {m.name: m for m in [
    Mistake("kernel_transposed", "conv kernels read with kh/kw swapped (kernel.T): .dat rows taken as dx",
            kernel=lambda k: np.ascontiguousarray(k.transpose(0, 1, 3, 2))),
    Mistake("kernel_flipped", "true convolution instead of cross-correlation (kernel rotated 180 deg)",
            kernel=lambda k: np.ascontiguousarray(k[:, :, ::-1, ::-1])),
    Mistake("bgr_input", "channels fed B,G,R instead of R,G,B (OpenCV order kept; or RGB video frames "
            "flipped again)", layout=_bgr_layout),
    Mistake("row_major_reshape", "resized (H,W,3) buffer read as (W,H,3) and transposed back "
            "(per plane: reshape(W,H).T)", buffer=_row_major_reshape),
    Mistake("column_major_read", "resized C-order (H,W,3) buffer unpacked in Fortran order",
            buffer=_column_major_read),
    Mistake("hwc_as_chw", "interleaved (H,W,3) buffer reshaped, not transposed, to (3,H,W)",
            layout=_hwc_as_chw),
    Mistake("dsize_swapped", "cv2.resize given (h, w) instead of (w, h); the (w,h,3) result reshaped to "
            "(h,w,3) (harmless when square)", resize=_dsize_swapped),
    Mistake("dsize_swapped_transposed", "cv2.resize given (h, w); the (w,h,3) result transposed to (h,w,3)",
            resize=_dsize_swapped_transposed),
    Mistake("resize_area", "cv2 INTER_AREA instead of INTER_LINEAR", resize=_cv2_resize(cv2.INTER_AREA)),
    Mistake("resize_nearest", "cv2 INTER_NEAREST instead of INTER_LINEAR", resize=_cv2_resize(cv2.INTER_NEAREST)),
    Mistake("resize_cubic", "cv2 INTER_CUBIC instead of INTER_LINEAR", resize=_cv2_resize(cv2.INTER_CUBIC)),
    Mistake("resize_torch_antialias", "torch interpolate(bilinear, antialias=True) (PIL's filter: equals "
            "resize_pil to ~1e-6)",
            resize=_torch_resize(True, False), needs=("torch",)),
    Mistake("resize_align_corners", "torch interpolate(bilinear, align_corners=True)",
            resize=_torch_resize(False, True), needs=("torch",)),
    Mistake("resize_pil", "PIL Image.resize BILINEAR (anti-aliased when shrinking)",
            resize=_pil_resize, needs=("PIL",)),
    Mistake("no_normalisation", "raw 0-255 values fed to the net", normalise=lambda v: v.astype(np.float32)),
    Mistake("normalise_first_channel", "OpenCV Mat - 127.5 pitfall: only channel 0 (B) centred, all scaled "
            "by 1/128", normalise=_first_channel_only),
    Mistake("normalise_unit_range", "v / 255 instead of (v - 127.5) / 128",
            normalise=lambda v: v.astype(np.float32) / np.float32(255.0)),
    Mistake("normalise_127_5", "(v - 127.5) / 127.5 instead of / 128 (0.4 % scale error)",
            normalise=lambda v: (v.astype(np.float32) - np.float32(127.5)) / np.float32(127.5)),
    Mistake("fc_flatten_order", "RNet/ONet first FC fed NCHW reshape(-1) instead of (channel, x, y): "
            "cannot touch PNet layer 0", fc_flatten=True),
]}
"""Every single mistake by name (:func:`get_mistake` also builds ``+`` combinations)."""

INVESTIGATED = [
    "kernel_transposed", "kernel_flipped", "bgr_input", "row_major_reshape", "column_major_read", "hwc_as_chw",
    "dsize_swapped", "dsize_swapped_transposed", "resize_area", "resize_nearest", "resize_cubic",
    "resize_torch_antialias", "resize_align_corners", "resize_pil", "no_normalisation",
    "normalise_first_channel", "normalise_unit_range", "normalise_127_5", "fc_flatten_order",
    "bgr_input+resize_area", "bgr_input+resize_nearest", "bgr_input+resize_pil", "bgr_input+kernel_transposed",
]
"""The rows :func:`investigate` computes by default (single mistakes, then combinations)."""


def available(mistake: Mistake) -> bool:
    """True when the optional packages a mistake needs (torch, PIL) can be imported."""
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in mistake.needs)


def get_mistake(name: str | None) -> Mistake | None:
    """The named mistake; ``"a+b"`` combines mistakes that replace different stages; ``None`` is correct."""
    if name is None or name in ("", "none"):
        return None
    parts = name.split("+")
    if len(parts) == 1:
        if name not in MISTAKES:
            raise KeyError(f"unknown mistake {name!r}; known: {', '.join(MISTAKES)}")
        return MISTAKES[name]
    merged: dict = {}
    for part in parts:
        m = get_mistake(part)
        for stage in m.stages:
            if stage in merged:
                raise ValueError(f"{name!r}: two mistakes replace the {stage} stage")
            merged[stage] = True if stage == "fc_flatten" else getattr(m, stage)
    return Mistake(name, " + ".join(MISTAKES[p].description for p in parts),
                   needs=tuple(n for p in parts for n in MISTAKES[p].needs), **merged)


# --------------------------------------------------------------------------------------------
# layer 0 under a mistake


def _stage(mistake: Mistake | None, name: str, default: Callable) -> Callable:
    value = getattr(mistake, name) if mistake is not None else None
    return default if value is None else value


def network_input(image: Array, scale: float, mistake: str | Mistake | None = None) -> Array:
    """PNet's float32 (3, h, w) input for a BGR uint8 image at ``scale``, under ``mistake``."""
    m = get_mistake(mistake) if not isinstance(mistake, Mistake) else mistake
    size = level_size(image.shape[0], image.shape[1], scale)
    resized = _stage(m, "resize", correct_resize)(image.astype(np.float32), size)
    values = _stage(m, "normalise", correct_normalise)(_stage(m, "buffer", _identity)(resized))
    return _stage(m, "layout", correct_layout)(values)


def conv_layer(layer: Conv, mistake: Mistake | None) -> Conv:
    """``layer`` with the mistake's kernel transform applied (the bias is unchanged)."""
    kernel = _stage(mistake, "kernel", None)
    return layer if kernel is None else Conv(np.ascontiguousarray(kernel(layer.weight), np.float32), layer.bias)


def layer0_from_input(x: Array, weights: WeightSet | NetSpec, mistake: str | Mistake | None = None) -> Array:
    """PNet ``l00_conv`` (10, h-2, w-2) of a (3, h, w) input, with the mistake's kernel transform."""
    m = get_mistake(mistake) if not isinstance(mistake, Mistake) else mistake
    pnet = weights.pnet if isinstance(weights, WeightSet) else weights
    return apply_layer(np.asarray(x, np.float32)[None], conv_layer(pnet.layers[0], m))[0]


def layer0(image: Array, scale: float, weights: WeightSet | NetSpec, mistake: str | Mistake | None = None) -> Array:
    """PNet layer-0 convolution (before PReLU), (10, h-2, w-2), of a BGR uint8 image at ``scale``.

    ``mistake=None`` is OpenFace's pipeline (matches the C++ dumps); a name from :data:`MISTAKES`
    (or an ``a+b`` combination) replaces the stages that mistake gets wrong.
    """
    m = get_mistake(mistake) if not isinstance(mistake, Mistake) else mistake
    return layer0_from_input(network_input(image, scale, m), weights, m)


# --------------------------------------------------------------------------------------------
# signatures


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


# --------------------------------------------------------------------------------------------
# test inputs: the 1080p case and the C++-dumped inputs


def hd_frame(image: Array, size: tuple[int, int] = HD_SIZE) -> Array:
    """A 1920x1080 BGR uint8 test frame: ``image`` stretched with INTER_LINEAR to ``size = (h, w)``.

    At scale 0.2 it gives the reported 384x216 level (an exact 5:1 ratio, so INTER_LINEAR and
    INTER_CUBIC both pick pixel ``5 * i + 2`` and agree exactly).
    """
    return cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)


@dataclass(frozen=True)
class DumpedCase:
    """One C++-dumped PNet level: the image, its scale and the C++ ``l00_conv`` (10, h', w')."""

    image_name: str
    scale_index: int
    scale: float
    image: Array
    truth: Array
    cpp_input: Array


def dumped_cases(shared: str | Path) -> Iterator[DumpedCase]:
    """Every dumped PNet level (first and last scale of each image) under ``shared/``."""
    from mtcnn_lab.io.images import read_image

    shared = Path(shared)
    for name, rel in DUMPED_IMAGES.items():
        image = read_image(shared / rel)
        with np.load(shared / "reference" / "layers" / f"{name}_pnet.npz") as z:
            for i in z["dumped_scale_indices"]:
                yield DumpedCase(name, int(i), float(z["scales"][i]), image,
                                 z[f"s{i}_l00_conv"], z[f"s{i}_in"])


# --------------------------------------------------------------------------------------------
# RNet / ONet under a mistake


def _net_with_mistake(spec: NetSpec, x: Array, mistake: Mistake | None) -> Array:
    """Run RNet/ONet on (N, 3, S, S) with the mistake's kernel transform on every conv layer and,
    for ``fc_flatten``, the first FC fed ``x.reshape(N, -1)`` (NCHW) instead of (channel, x, y)."""
    x = np.asarray(x, np.float32)
    for layer in spec.layers:
        if isinstance(layer, Conv):
            layer = conv_layer(layer, mistake)
        if isinstance(layer, FC) and x.ndim == 4 and mistake is not None and mistake.fc_flatten:
            x = x.reshape(len(x), -1) @ layer.weight.T + layer.bias
            continue
        x = apply_layer(x, layer)
    return x


def flatten_orders_differ(x: Array) -> bool:
    """True when NCHW ``reshape(-1)`` and OpenFace's (channel, x, y) flattening of (N, C, H, W) differ."""
    return not np.array_equal(x.reshape(len(x), -1), fc_input(x.swapaxes(0, 1)).T)


def crop_buffers(image: Array, crop_geom: Array, box_xywh: Array) -> list[Array]:
    """The C++'s zero-filled (s+1, s+1, 3) float32 crop buffers, rebuilt from the dumped ``crop_geom``."""
    buffers = []
    for geom, box in zip(crop_geom, box_xywh, strict=True):
        sx, sy, ex, ey, ox, oy, eox, eoy = (int(v) for v in geom)
        buf = np.zeros((int(box[2]) + 1, int(box[2]) + 1, 3), np.float32)
        buf[oy:eoy, ox:eox] = image[sy:ey, sx:ex]
        buffers.append(buf)
    return buffers


def crop_input(image: Array, crop_geom: Array, box_xywh: Array, size: int,
               mistake: Mistake | None = None) -> Array:
    """RNet/ONet input (N, 3, size, size) built by a port from the image, under ``mistake``."""
    resize = _stage(mistake, "resize", correct_resize)
    buffer = _stage(mistake, "buffer", _identity)
    normalise = _stage(mistake, "normalise", correct_normalise)
    layout = _stage(mistake, "layout", correct_layout)
    return np.stack([layout(normalise(buffer(resize(b, (size, size)))))
                     for b in crop_buffers(image, crop_geom, box_xywh)])


def net_output_divergence(image: Array, weights: WeightSet, dump_path: str | Path,
                          mistake: str | Mistake | None = None) -> dict:
    """Max |diff| of RNet/ONet's last FC output (logits, regression) from the C++ dump, two ways.

    * ``from_cpp_in``: the net fed the dumped C++ input ``in`` (how a port compares the network
      alone, and the only way once its own PNet boxes differ): sees kernel and flatten mistakes only;
    * ``from_image``: the port builds the crops itself from the image and the dumped crop
      geometry (resize, normalise, channel order included).
    """
    m = get_mistake(mistake) if not isinstance(mistake, Mistake) else mistake
    with np.load(dump_path) as z:
        dump = {k: z[k] for k in z.files}
    spec = weights.rnet if dump["in"].shape[-1] == 24 else weights.onet
    last = [k for k in dump if k.startswith("l") and k.endswith("_fc")]
    expected = dump[max(last)].astype(np.float64)
    ours_in = _net_with_mistake(spec, dump["in"], m)
    ours_img = _net_with_mistake(spec, crop_input(image, dump["crop_geom"], dump["box_xywh"],
                                                  dump["in"].shape[-1], m), m)
    return {"net": spec.name, "from_cpp_in": float(np.abs(ours_in - expected).max()),
            "from_image": float(np.abs(ours_img - expected).max())}
