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

from mtcnn_lab.lab.divergence.cases import (
    DUMPED_IMAGES,
    HD_SIZE,
    DumpedCase,
    crop_buffers,
    crop_input,
    dumped_cases,
    flatten_orders_differ,
    hd_frame,
    net_output_divergence,
    net_with_mistake,
)
from mtcnn_lab.lab.divergence.mistakes import (
    INVESTIGATED,
    MISTAKES,
    Mistake,
    available,
    conv_layer,
    correct_layout,
    correct_normalise,
    correct_resize,
    get_mistake,
    identity,
    layer0,
    layer0_from_input,
    network_input,
    stage_or_default,
)
from mtcnn_lab.lab.divergence.signatures import (
    REPORTED,
    colour_opponency,
    divergence_signature,
    format_table,
    investigate,
    reproduces_report,
    swap_parts,
)

__all__ = [
    "DUMPED_IMAGES", "DumpedCase", "HD_SIZE", "INVESTIGATED", "MISTAKES", "Mistake", "REPORTED", "available",
    "colour_opponency", "conv_layer", "correct_layout", "correct_normalise", "correct_resize", "crop_buffers",
    "crop_input", "divergence_signature", "dumped_cases", "flatten_orders_differ", "format_table", "get_mistake",
    "hd_frame", "identity", "investigate", "layer0", "layer0_from_input", "net_output_divergence",
    "net_with_mistake", "network_input", "reproduces_report", "stage_or_default", "swap_parts",
]
