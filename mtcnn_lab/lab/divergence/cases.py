"""The inputs of the investigation (the 1080p frame, the C++-dumped cases) and RNet/ONet under a mistake."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from mtcnn_lab.lab.divergence.mistakes import (
    Array,
    Mistake,
    conv_layer,
    correct_layout,
    correct_normalise,
    correct_resize,
    get_mistake,
    identity,
    stage_or_default,
)
from mtcnn_lab.nets.reference import apply_layer, fc_input
from mtcnn_lab.weights.netspec import FC, Conv, NetSpec, WeightSet

HD_SIZE = (1080, 1920)
"""(height, width) of the 1080p frames the earlier port was most likely fed."""


DUMPED_IMAGES = {
    "sample1": "samples/sample1.jpg",
    "sample2": "samples/sample2.jpg",
    "multi_face_f140": "samples/frames/multi_face_f140.png",
}
"""The images with C++ layer dumps, as paths under ``shared/``."""


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


def net_with_mistake(spec: NetSpec, x: Array, mistake: Mistake | None) -> Array:
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
    resize = stage_or_default(mistake, "resize", correct_resize)
    buffer = stage_or_default(mistake, "buffer", identity)
    normalise = stage_or_default(mistake, "normalise", correct_normalise)
    layout = stage_or_default(mistake, "layout", correct_layout)
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
    ours_in = net_with_mistake(spec, dump["in"], m)
    ours_img = net_with_mistake(spec, crop_input(image, dump["crop_geom"], dump["box_xywh"],
                                                  dump["in"].shape[-1], m), m)
    return {"net": spec.name, "from_cpp_in": float(np.abs(ours_in - expected).max()),
            "from_image": float(np.abs(ours_img - expected).max())}
