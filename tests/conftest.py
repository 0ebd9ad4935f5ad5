"""Shared fixtures: the ``../shared`` folder beside the checkout and the weight sets."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
REFERENCE = SHARED / "reference"
SAMPLES = SHARED / "samples"
MODELS = SHARED / "OpenFaceModels"
DEV_REFERENCE = REFERENCE / "cpp_mtcnn_dev.json"
NO_SHARED = f"shared data not found at {SHARED} (OpenFace samples and C++ reference live outside the repo)"
needs_shared = pytest.mark.skipif(not DEV_REFERENCE.is_file() or not SAMPLES.is_dir(), reason=NO_SHARED)


def require_shared(*parts: str) -> Path:
    """The path under ``../shared``, or skip the test saying what is missing."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs {path} (the shared/ folder beside the checkout with OpenFace's "
                    "reference data); not present here")
    return path


@pytest.fixture(scope="session")
def openface_weights():
    """OpenFace's weights from ``../shared/OpenFaceModels`` (skips when absent)."""
    from mtcnn_lab.weights.sets import load_weights

    return load_weights("openface", models_root=require_shared("OpenFaceModels"))


@pytest.fixture(scope="session")
def bundled_weights():
    """The bundled MIT weights (always available)."""
    from mtcnn_lab.weights.sets import load_weights

    return load_weights("zhang2016")


@pytest.fixture(scope="module")
def hopper():
    """matplotlib's ``grace_hopper.jpg`` (600x512, one face) as BGR uint8, as OpenCV reads it."""
    import cv2
    from matplotlib import cbook

    image = cv2.imread(str(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)), cv2.IMREAD_COLOR)
    assert image is not None and image.shape == (600, 512, 3)
    return image
