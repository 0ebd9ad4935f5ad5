"""The correct input stages of PNet and the porting mistakes that replace them; layer 0 under a mistake."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np

from mtcnn_lab.nets.reference import apply_layer
from mtcnn_lab.params import level_size
from mtcnn_lab.weights.netspec import Conv, NetSpec, WeightSet

Array = np.ndarray


Resize = Callable[[Array, tuple[int, int]], Array]


def correct_resize(image_f32: Array, size: tuple[int, int]) -> Array:
    """OpenFace: ``cv2.resize`` INTER_LINEAR of the float32 BGR image to ``size = (h, w)``."""
    return cv2.resize(image_f32, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)


def correct_normalise(hwc: Array) -> Array:
    """OpenFace: ``(v - 127.5) * 0.0078125`` in float32 on every channel."""
    return (hwc.astype(np.float32) - np.float32(127.5)) * np.float32(0.0078125)


def correct_layout(hwc: Array) -> Array:
    """OpenFace: (..., h, w, 3) B,G,R -> (..., 3, h, w) R,G,B."""
    return np.ascontiguousarray(np.moveaxis(hwc[..., ::-1], -1, -3))


def identity(x: Array) -> Array:
    """``x`` unchanged: the stage a mistake leaves as OpenFace has it."""
    return x


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


def stage_or_default(mistake: Mistake | None, name: str, default: Callable) -> Callable:
    """The ``name`` stage that ``mistake`` replaces, or ``default`` when it leaves that stage alone (or is None)."""
    value = getattr(mistake, name) if mistake is not None else None
    return default if value is None else value


def network_input(image: Array, scale: float, mistake: str | Mistake | None = None) -> Array:
    """PNet's float32 (3, h, w) input for a BGR uint8 image at ``scale``, under ``mistake``."""
    m = get_mistake(mistake) if not isinstance(mistake, Mistake) else mistake
    size = level_size(image.shape[0], image.shape[1], scale)
    resized = stage_or_default(m, "resize", correct_resize)(image.astype(np.float32), size)
    values = stage_or_default(m, "normalise", correct_normalise)(stage_or_default(m, "buffer", identity)(resized))
    return stage_or_default(m, "layout", correct_layout)(values)


def conv_layer(layer: Conv, mistake: Mistake | None) -> Conv:
    """``layer`` with the mistake's kernel transform applied (the bias is unchanged)."""
    kernel = stage_or_default(mistake, "kernel", None)
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
