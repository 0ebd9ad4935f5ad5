"""``mtcnn_lab.compat.pymtcnn``: pymtcnn 1.2.0's API, OpenFace's boxes.

The API facts checked here are pymtcnn 1.2.0's own (its ``MTCNN`` docstrings): ``detect`` returns float
``(N, 4)`` boxes ``x, y, w, h`` and ``(N, 5, 2)`` landmarks, ``detect_batch`` a list of such pairs,
unknown backend names are a ValueError. Where pymtcnn is installed (``.venv-bench``), the two classes are
compared on the dev inputs; everywhere, the boxes are compared with C++ OpenFace's.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import subprocess
import sys

import numpy as np
import pytest

from mtcnn_lab.compat import pymtcnn as compat
from mtcnn_lab.io.images import read_image

from .conftest import SAMPLES, require_shared
from .test_parity import PX, dev_entries


@pytest.fixture(scope="module")
def detector():
    with compat.MTCNN(backend="cpu") as detector:
        yield detector


def test_detect_returns_pymtcnn_s_types_and_shapes(detector, hopper):
    bboxes, landmarks = detector.detect(hopper)
    assert bboxes.dtype == np.float64 and bboxes.shape == (1, 4)
    assert landmarks.dtype == np.float64 and landmarks.shape == (1, 5, 2)
    x, y, w, h = bboxes[0]
    assert w > 0 and h > 0  # width and height, not corners
    assert np.all((landmarks[0, :, 0] > x) & (landmarks[0, :, 0] < x + w))
    empty = detector.detect(np.zeros((100, 100, 3), np.uint8))
    assert [(a.shape, a.dtype) for a in empty] == [((0, 4), np.float64), ((0, 5, 2), np.float64)]


def test_debug_adds_confidences_and_the_trace(detector, hopper):
    bboxes, landmarks, debug = detector.detect(hopper, return_debug=True)
    assert debug["confidences"].shape == (1,) and 0.7 <= debug["confidences"][0] <= 1
    assert len(debug["trace"]["pnet_scales"]) > 0
    np.testing.assert_array_equal(bboxes, detector.detect(hopper)[0])


def test_detect_batch_is_detect_per_frame(detector, hopper):
    frames = [hopper, np.zeros((100, 100, 3), np.uint8), hopper[:, ::-1].copy(), hopper]
    batched = detector.detect_batch(frames)
    assert isinstance(batched, list) and len(batched) == 4
    for (b, lm), frame in zip(batched, frames, strict=True):
        ob, olm = detector.detect(frame)
        np.testing.assert_array_equal(b, ob)
        np.testing.assert_array_equal(lm, olm)


def test_constructor_takes_pymtcnn_s_arguments(detector):
    with pytest.raises(ValueError, match="Invalid backend 'tensorrt'. Must be one of: auto, coreml, onnx, cuda, cpu"):
        compat.MTCNN(backend="tensorrt")
    assert detector.get_backend_info() == {"backend": detector.backend_name}
    assert repr(detector) == f"MTCNN(backend={detector.backend_name})"
    assert detector.backend_name in ("openvino", "onnx", "numpy")
    with compat.MTCNN(backend="CPU", model_dir="/nowhere", verbose=False, debug_mode=True, threads=1) as other:
        assert len(other.detect(np.zeros((80, 80, 3), np.uint8))) == 3  # debug_mode: the debug dict too


def test_no_detect_and_correct_so_pyclnf_takes_the_mtcnn_path():
    assert not hasattr(compat.MTCNN, "detect_and_correct")


def test_install_makes_import_pymtcnn_give_this_class():
    before = sys.modules.get("pymtcnn")
    compat.install()
    try:
        from pymtcnn import MTCNN  # what pyclnf and pyfaceau write

        assert MTCNN is compat.MTCNN
    finally:
        compat.uninstall()
    assert sys.modules.get("pymtcnn") is before


def test_install_works_for_code_that_imports_pymtcnn_later():
    # a fresh interpreter, as a user's script: install, then code that knows only pymtcnn
    code = ("from mtcnn_lab.compat import pymtcnn; pymtcnn.install()\n"
            "import numpy as np\n"
            "from pymtcnn import MTCNN\n"
            "d = MTCNN(backend='cpu')\n"
            "b, lm = d.detect(np.zeros((90, 90, 3), np.uint8))\n"
            "print(type(d).__module__, b.shape, lm.shape)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[-2] == "mtcnn_lab.compat.pymtcnn (0, 4) (0, 5, 2)"


def test_boxes_equal_cpp_on_the_dev_inputs(detector):
    require_shared("reference", "cpp_mtcnn_dev.json")
    worst = 0.0
    for cpp in dev_entries():
        bboxes, landmarks = detector.detect(read_image(SAMPLES / cpp["image"]))
        assert len(bboxes) == len(cpp["faces"]), cpp["image"]
        for box, face in zip(bboxes, cpp["faces"], strict=True):
            worst = max(worst, float(np.abs(box - np.asarray(face["bbox"], np.float64)).max()))
    assert worst <= PX


@pytest.mark.skipif(importlib.util.find_spec("pymtcnn") is None,
                    reason="pymtcnn is not installed here (only in .venv-bench: benchmarks/setup_bench_env.sh)")
def test_same_api_as_pymtcnn_itself_and_cpp_boxes_where_pymtcnn_s_are_not(detector):
    import pymtcnn
    from pymtcnn import models as pymtcnn_models

    from mtcnn_lab.lab.bench.pymtcnn import pymtcnn_cache_dir

    require_shared("reference", "cpp_mtcnn_dev.json")
    assert importlib.metadata.version("pymtcnn") == compat.PYMTCNN_API  # the release whose API is reproduced
    theirs = pymtcnn.MTCNN(backend="cpu", model_dir=str(pymtcnn_models.models_dir(pymtcnn_cache_dir())))
    pymtcnn_off = 0
    for cpp in dev_entries():
        image = read_image(SAMPLES / cpp["image"])
        ours, reference = detector.detect(image), theirs.detect(image)
        assert type(ours) is type(reference) and len(ours) == len(reference) == 2
        for a, b in zip(ours, reference, strict=True):
            assert type(a) is type(b) and a.ndim == b.ndim and a.shape[1:] == b.shape[1:]
        expected = np.asarray([f["bbox"] for f in cpp["faces"]], np.float64).reshape(-1, 4)
        assert ours[0].shape == expected.shape and np.abs(ours[0] - expected).max(initial=0) <= PX
        pymtcnn_off += reference[0].shape != expected.shape or np.abs(reference[0] - expected).max(initial=0) > PX
    print(f"pymtcnn 1.2.0's boxes differ from C++ by more than {PX} px on {pymtcnn_off} of the dev inputs; ours on 0")
