"""Where the workbench's project is, wherever Jupyter starts a notebook.

A *project* is the folder that holds ``data/manifest.json``: a clone of this repository (or a study folder
laid out the same way). JupyterLab, VS Code and classic Jupyter run a notebook in its own folder
(``notebooks/``), papermill in the folder it is given, a script in the folder it was started from; the
project is found from there by walking up, as git finds its repository. Its ``results/`` folder and the
``shared/`` folder beside it (OpenFace's samples and C++ reference) are the notebooks' defaults.
"""

from __future__ import annotations

import os
from pathlib import Path

from mtcnn_lab.errors import InputError
from mtcnn_lab.io.paths import PathLike, show_path

__all__ = ["PROJECT_MANIFEST", "find_project", "openface_models", "results_folder", "shared_folder"]

PROJECT_MANIFEST = Path("data") / "manifest.json"
"""The evaluation manifest of a project, relative to the project folder."""


def find_project(start: PathLike | None = None) -> Path:
    """The nearest folder at or above ``start`` (default: the working directory) that holds
    :data:`PROJECT_MANIFEST`, as an absolute path. InputError in one line, naming where it looked, when
    there is none."""
    here = Path(os.path.abspath(start if start is not None else os.getcwd()))
    for folder in (here, *here.parents):
        if (folder / PROJECT_MANIFEST).is_file():
            return folder
    raise InputError(f"no {PROJECT_MANIFEST.as_posix()} in {show_path(str(here))} or any folder above it, so the "
                     "default evaluation set is unknown: open the notebooks from a clone of mtcnn-lab (its folder or "
                     "notebooks/), or pass manifest='/path/to/manifest.json' (write one with: mtcnn-lab manifest "
                     "write VIDEO_FOLDER manifest.json)")


def results_folder(results_dir: PathLike | None = None, start: PathLike | None = None) -> Path:
    """``results_dir`` when given, else the ``results/`` folder of :func:`find_project` (from ``start``)."""
    return Path(results_dir) if results_dir is not None else find_project(start) / "results"


def shared_folder(shared_dir: PathLike | None = None, start: PathLike | None = None) -> Path:
    """``shared_dir`` when given, else the ``shared/`` folder beside the project of :func:`find_project`
    (OpenFace's samples, C++ reference and layer dumps; ``data/manifest.json`` points there too)."""
    return Path(shared_dir) if shared_dir is not None else find_project(start).parent / "shared"


def openface_models(models_root: PathLike | None = None, start: PathLike | None = None) -> Path | None:
    """The OpenFace model cache to compare with: ``models_root`` when given; None when ``$OPENFACE_MODELS_DIR``
    is set (the runtime reads it) or when there is no ``OpenFaceModels`` in :func:`shared_folder` (the runtime's
    default cache then applies); else that folder."""
    if models_root is not None:
        return Path(models_root)
    if os.environ.get("OPENFACE_MODELS_DIR"):
        return None
    shared = shared_folder(start=start) / "OpenFaceModels"
    return shared if shared.is_dir() else None
