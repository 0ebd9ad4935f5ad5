"""The named weight sets: OpenFace's ``.dat`` files from the model cache and the bundled MIT weights (npz)."""

from __future__ import annotations

import logging
import os
import zipfile
import zlib
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

import numpy as np

from mtcnn_lab.errors import WeightsError
from mtcnn_lab.weights.dat import read_dat
from mtcnn_lab.weights.netspec import FC, NET_NAMES, Conv, Layer, MaxPool, NetSpec, PReLU, Sigmoid, WeightSet

log = logging.getLogger(__name__)

__all__ = [
    "WEIGHT_SET_NAMES", "BUNDLED_FILE", "bundled_data", "rounded_weights", "save_npz", "load_npz", "load_bundled",
    "load_openface_weights", "load_weights",
]

WEIGHT_SET_NAMES = ("openface", "zhang2016")
"""The named weight sets :func:`load_weights` takes (and ``"auto"``)."""

BUNDLED_FILE = "zhang2016_mtcnn.npz"
"""The file of the bundled MIT weights in :func:`bundled_data`."""


def bundled_data() -> Traversable:
    """The package data folder of the bundled weights (the npz, its provenance record, its licence)."""
    return resources.files("mtcnn_lab.weights") / "data"


def rounded_weights(weights: WeightSet, dtype: type = np.float16) -> WeightSet:
    """A copy of a weight set with every float array rounded to ``dtype`` (stored as float32)."""

    def rounded(spec: NetSpec) -> NetSpec:
        layers = []
        for layer in spec.layers:
            if isinstance(layer, Conv | FC):
                layer = type(layer)(layer.weight.astype(dtype).astype(np.float32),
                                    layer.bias.astype(dtype).astype(np.float32))
            elif isinstance(layer, PReLU):
                layer = PReLU(layer.slopes.astype(dtype).astype(np.float32))
            layers.append(layer)
        return NetSpec(spec.name, tuple(layers))

    nets = {name: rounded(spec) for name, spec in weights.nets().items()}
    return WeightSet(f"{weights.name}-{np.dtype(dtype).name}", **nets, source=weights.source)


def save_npz(weights: WeightSet, path: str | Path) -> None:
    """Write a weight set to one ``.npz``: keys ``<net>/lNN_<kind>.<field>`` plus ``name``."""
    arrays = {f"{net}/{key}": value for net, spec in weights.nets().items()
              for key, value in spec.arrays().items()}
    with open(path, "wb") as handle:  # np.savez on a handle: no ".npz" suffix games
        np.savez_compressed(handle, name=np.array(weights.name), **arrays)


def _layer_from_arrays(kind: str, fields: dict[str, np.ndarray]) -> Layer:
    if kind == "conv":
        return Conv(fields["weight"].astype(np.float32), fields["bias"].astype(np.float32))
    if kind == "fc":
        return FC(fields["weight"].astype(np.float32), fields["bias"].astype(np.float32))
    if kind == "prelu":
        return PReLU(fields["slopes"].astype(np.float32))
    if kind == "pool":
        return MaxPool(*(int(v) for v in fields["pool"]))
    return Sigmoid()


def load_npz(path: str | Path) -> WeightSet:
    """Read a weight set written by :func:`save_npz` (any damage raises :class:`WeightsError`)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            content = {key: data[key] for key in data.files}
        nets = {}
        for net in NET_NAMES:
            layers: dict[str, dict[str, np.ndarray]] = {}
            for key, value in content.items():
                if key.startswith(f"{net}/"):
                    layer_key, field_name = key[len(net) + 1:].split(".")
                    layers.setdefault(layer_key, {})[field_name] = value
            if not layers:
                raise KeyError(f"no {net} layers")
            nets[net] = NetSpec(net, tuple(
                _layer_from_arrays(key.split("_", 1)[1], layers[key]) for key in sorted(layers)))
        return WeightSet(str(content["name"]), **nets, source=str(path))
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile, zlib.error) as err:
        raise WeightsError(f"{path}: not a readable weight archive ({type(err).__name__}: {err}); "
                           "reinstall mtcnn-lab or re-create it with save_npz") from None


def load_bundled() -> WeightSet:
    """The bundled MIT weights of Zhang et al. 2016 (``zhang2016``), from the package data."""
    with resources.as_file(bundled_data() / BUNDLED_FILE) as path:
        return load_npz(path)


def load_openface_weights(root: str | Path | None = None) -> WeightSet:
    """OpenFace's ``{PNet,RNet,ONet}.dat`` from the model cache (checksums verified, no download)."""
    from mtcnn_lab.weights.models_cache import require_dat_path

    root_path = Path(root) if root is not None else None
    paths = {net: require_dat_path(net, root_path) for net in NET_NAMES}
    nets = {net: read_dat(path, net) for net, path in paths.items()}
    return WeightSet("openface", **nets, source=str(paths["pnet"].parent))


def load_weights(name: str = "auto", models_root: str | Path | None = None) -> WeightSet:
    """Load a weight set by name.

    ``"openface"``: OpenFace's ``.dat`` files from the model cache (error if not installed).
    ``"zhang2016"``: the MIT-licensed MTCNN weights of Zhang et al. 2016 bundled with the package.
    ``"auto"``: OpenFace's files when they are installed, the bundled ones otherwise; the returned
    ``WeightSet.name`` says which was used; the two sets are bit-identical, so results do not change. Files
    that are there but damaged, or a ``models_root`` given without them, are logged as a warning with the reason.
    """
    if models_root is not None and not isinstance(models_root, str | os.PathLike):
        raise WeightsError(f"models_root must be the path of a model folder, not {type(models_root).__name__}")
    if name == "openface":
        return load_openface_weights(models_root)
    if name == "zhang2016":
        return load_bundled()
    if name == "auto":
        from mtcnn_lab.weights.models_cache import dat_path, installed_dat_paths

        root_path = Path(models_root) if models_root is not None else None
        if installed_dat_paths(root_path) is not None:
            return load_openface_weights(root_path)
        if root_path is not None or any(dat_path(net, root_path).exists() for net in NET_NAMES):
            try:
                load_openface_weights(root_path)
            except WeightsError as err:  # asked for, or half there: say why the bundled copy is used
                log.warning("using the bundled zhang2016 weights (bit-identical to OpenFace's): %s", err)
        return load_bundled()
    raise WeightsError(f"unknown weight set {name!r}; use {', '.join(map(repr, WEIGHT_SET_NAMES))} or 'auto'")
