"""The evaluation set: which images and video frames the workbench compares with C++ OpenFace.

A *manifest* (JSON, schema in ``data/README.md``) names a root folder, optionally a JSON of C++
results in the ``cpp_mtcnn_dev.json`` / ``mtcnn-lab detect --json`` schema, and the items to
evaluate: still images, image sequences and frames sampled from videos. :func:`load_manifest`
turns it into a :class:`Dataset` of :class:`EvalItem` objects, each with its C++ faces attached
when the reference has them.

The default manifest, ``data/manifest.json`` in the repository (override with the environment
variable ``MTCNN_LAB_MANIFEST``), points at OpenFace's samples and their C++ reference in
``../shared`` beside the checkout; nothing of them is copied into the repository.

Video frames are identified by ``(video, 0-based index in decode order)``. When a lossless PNG of
the frame exists as ``<video folder>/frames/<stem>_f<index>.png`` (the convention of
``shared/samples/frames``), :meth:`EvalItem.load` reads it instead of decoding the video: those
PNGs are the canonical pixels, because video decoders differ between OpenCV builds.

Every problem raises :class:`~mtcnn_lab.errors.InputError` with a one-line message naming the
file and the fix.
"""

from mtcnn_lab.lab.dataset.common import ALL_IN_REFERENCE, DEFAULT_MANIFEST, MANIFEST_ENV, default_manifest
from mtcnn_lab.lab.dataset.items import Dataset, EvalItem, spread_subset
from mtcnn_lab.lab.dataset.manifest import load_manifest
from mtcnn_lab.lab.dataset.writer import write_manifest_for_folder

__all__ = [
    "ALL_IN_REFERENCE", "DEFAULT_MANIFEST", "MANIFEST_ENV", "Dataset", "EvalItem", "default_manifest", "load_manifest",
    "spread_subset", "write_manifest_for_folder",
]

