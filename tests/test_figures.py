"""Paper figure style: reproducible PDF/PNG files, TrueType fonts, face overlays and drawing."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from mtcnn_lab.detections import Detections
from mtcnn_lab.lab.figures import (
    COLORS,
    PAPER_RC,
    as_arrays,
    color_for,
    draw_faces,
    faces_to_arrays,
    overlay,
    paper_style,
    save_figure,
    to_bgr,
)

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

CPP_FACES = [
    {"bbox": [20.5, 30.25, 40.0, 30.0], "confidence": 0.998,
     "landmarks": [[30.0, 40.0], [50.0, 40.0], [40.0, 48.0], [32.0, 54.0], [48.0, 54.0]],
     "bbox_pre_correction": [20.0, 20.0, 40.0, 40.0], "onet_input_box": [20, 20, 40, 40]},
    {"bbox": [70.0, 5.0, 20.0, 22.0], "confidence": 0.75,
     "landmarks": [[75.0, 10.0], [85.0, 10.0], [80.0, 15.0], [76.0, 20.0], [84.0, 20.0]]},
]

FIGURE_SCRIPT = textwrap.dedent("""
    import sys
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from mtcnn_lab.lab.figures import COLORS, overlay, paper_style, save_figure

    faces = [{"bbox": [10, 12, 30, 28], "confidence": 0.99,
              "landmarks": [[20, 20], [30, 20], [25, 27], [20, 33], [30, 33]]}]
    with paper_style():
        fig, (a, b) = plt.subplots(1, 2, figsize=(4, 2))
        x = np.linspace(0, 1, 20)
        for k, name in enumerate(["numpy", "torch", "fp16"]):
            a.plot(x, x ** (k + 1), color=COLORS[name], label=name, marker="o", markevery=5)
        a.set_title(r"IoU $\\geq$ 0.99 ± σ")
        a.set_xlabel("time (ms)")
        a.legend()
        image = (np.arange(48 * 64 * 3) % 251).astype(np.uint8).reshape(48, 64, 3)
        overlay(image, faces_python=faces, faces_cpp=faces, ax=b)
        save_figure(fig, "determinism", sys.argv[1])
""")


def run_figure_script(tmp_path: Path, outdir: Path, hash_seed: str) -> None:
    script = tmp_path / "make_figure.py"
    script.write_text(FIGURE_SCRIPT)
    env = {**os.environ, "PYTHONHASHSEED": hash_seed, "SOURCE_DATE_EPOCH": hash_seed, "MPLBACKEND": "Agg"}
    subprocess.run([sys.executable, str(script), str(outdir)], check=True, env=env, cwd=tmp_path, timeout=120)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory) -> tuple[Path, Path]:
    """The same figure saved by two separate Python processes (different hash seeds and folders)."""
    tmp = tmp_path_factory.mktemp("figures")
    first, second = tmp / "run1", tmp / "nested" / "run2"
    run_figure_script(tmp, first, "1")
    run_figure_script(tmp, second, "987654")
    return first, second


def test_pdf_and_png_identical_across_processes(two_runs):
    first, second = two_runs
    for suffix in ("pdf", "png"):
        a, b = (first / f"determinism.{suffix}").read_bytes(), (second / f"determinism.{suffix}").read_bytes()
        assert a == b, f"{suffix} differs between two runs"


def test_pdf_embeds_truetype_fonts_and_no_dates(two_runs):
    pdf = (two_runs[0] / "determinism.pdf").read_bytes()
    assert pdf.startswith(b"%PDF")
    assert b"/FontFile2" in pdf  # Type 42 (TrueType) font program
    assert b"/Type3" not in pdf
    assert b"DejaVuSans" in pdf
    assert b"/CreationDate" not in pdf and b"/ModDate" not in pdf
    assert b"/Producer (mtcnn-lab)" in pdf
    assert b"Matplotlib" not in pdf


def test_png_written_without_software_chunk(two_runs):
    png = (two_runs[0] / "determinism.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert b"tEXt" not in png and b"Software" not in png and b"tIME" not in png
    import cv2

    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape[1] > 600  # 4 in wide at 300 dpi, minus the tight crop


def test_save_figure_returns_paths_and_replaces(tmp_path):
    fig, ax = plt.subplots(figsize=(1, 1))
    ax.plot([0, 1], [0, 1])
    paths = save_figure(fig, "line", tmp_path / "out")
    assert set(paths) == {"png", "pdf"}
    assert paths["pdf"] == tmp_path / "out" / "line.pdf" and paths["png"].is_file()
    before = paths["pdf"].read_bytes()
    again = save_figure(fig, "line", tmp_path / "out", formats=("pdf",))
    assert set(again) == {"pdf"} and again["pdf"].read_bytes() == before
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["line.pdf", "line.png"]  # no temp files
    with pytest.raises(ValueError, match="figure name must be a plain file stem, not '../escape'"):
        save_figure(fig, "../escape", tmp_path)
    with pytest.raises(ValueError, match="format must be 'png' or 'pdf', not 'jpg'"):
        save_figure(fig, "x", tmp_path, formats=("jpg",))
    plt.close(fig)


def test_paper_style_applies_and_restores():
    before = matplotlib.rcParams["pdf.fonttype"], matplotlib.rcParams["savefig.dpi"]
    with paper_style() as rc:
        assert matplotlib.rcParams["pdf.fonttype"] == 42 and matplotlib.rcParams["ps.fonttype"] == 42
        assert matplotlib.rcParams["savefig.dpi"] == 300
        assert matplotlib.rcParams["font.sans-serif"][0] == "DejaVu Sans"
        assert matplotlib.rcParams["svg.hashsalt"] == "mtcnn-lab"
        assert COLORS["numpy"] in [c["color"] for c in matplotlib.rcParams["axes.prop_cycle"]]
        assert rc["pdf.fonttype"] == 42
    assert (matplotlib.rcParams["pdf.fonttype"], matplotlib.rcParams["savefig.dpi"]) == before
    assert PAPER_RC["savefig.dpi"] == 300


def test_colors_are_distinct_hex_and_map_backend_names():
    families = ["cpp", "python", "numpy", "torch", "onnx", "coreml", "pymtcnn", "fp16"]
    assert all(re.fullmatch(r"#[0-9A-F]{6}", COLORS[k]) for k in families)
    assert len({COLORS[k] for k in families}) == len(families)
    assert color_for("torch-cpu") == COLORS["torch"]
    assert color_for("onnx-cpu-fp16") == COLORS["fp16"]
    assert color_for("coreml-fp32-all") == COLORS["coreml"]
    assert color_for("numpy") == COLORS["numpy"]
    assert color_for("C++") == COLORS["cpp"]
    assert to_bgr("#E69F00") == (0x00, 0x9F, 0xE6)
    assert to_bgr("cpp") == to_bgr(COLORS["cpp"])


def test_faces_to_arrays_on_cpp_dicts():
    boxes, confidences, landmarks = faces_to_arrays(CPP_FACES)
    assert boxes.dtype == np.float32 and boxes.shape == (2, 4)
    assert confidences.dtype == np.float32 and confidences.shape == (2,)
    assert landmarks.shape == (2, 5, 2)
    np.testing.assert_array_equal(boxes[0], np.float32([20.5, 30.25, 40.0, 30.0]))
    np.testing.assert_allclose(confidences, [0.998, 0.75], rtol=1e-6)
    np.testing.assert_array_equal(landmarks[1, 2], [80.0, 15.0])
    # a whole result entry, an empty list, a face without landmarks
    assert faces_to_arrays({"image": "x.png", "faces": CPP_FACES})[0].shape == (2, 4)
    empty = faces_to_arrays([])
    assert [a.shape for a in empty] == [(0, 4), (0,), (0, 5, 2)]
    bare = faces_to_arrays([{"bbox": [1, 2, 3, 4]}])
    assert np.isnan(bare[1]).all() and np.isnan(bare[2]).all()


def test_as_arrays_accepts_detections():
    det = Detections.empty()
    assert as_arrays(det)[0].shape == (0, 4)
    assert as_arrays(None)[2].shape == (0, 5, 2)


def test_draw_faces_draws_box_and_landmarks():
    image = np.zeros((100, 120, 3), np.uint8)
    boxes, _, landmarks = faces_to_arrays(CPP_FACES[:1])
    out = draw_faces(image, np.float32([[20, 30, 40, 30]]), landmarks, (0, 0, 255), thickness=1)
    assert not image.any()  # the input is left alone
    assert out[30, 40, 2] > 0 and out[59, 40, 2] > 0  # top and bottom edges (rows y and y+h-1)
    assert out[45, 20, 2] > 0 and out[45, 59, 2] > 0  # left and right edges
    assert out[34, 40].sum() == 0  # inside, away from the landmarks
    assert out[40, 30, 2] > 0  # a landmark dot
    assert out[5, 5].sum() == 0 and out[80, 100].sum() == 0  # far outside untouched
    assert (out[..., :2] == 0).all()  # only red was used
    inplace = image.copy()
    assert draw_faces(inplace, boxes, None, (255, 0, 0), copy=False) is inplace and inplace.any()


def test_overlay_draws_boxes_where_they_are():
    height, width = 100, 120
    image = np.zeros((height, width, 3), np.uint8)

    def rendered(**faces) -> np.ndarray:
        fig = plt.figure(figsize=(width / 100, height / 100), dpi=100)
        ax = fig.add_axes((0, 0, 1, 1))
        overlay(image, ax=ax, legend=False, **faces)
        fig.canvas.draw()
        pixels = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
        plt.close(fig)
        return pixels

    blank = rendered()
    assert blank.max() == 0
    drawn = rendered(faces_cpp=[{"bbox": [20, 30, 40, 30]}])
    changed = (drawn != blank).any(axis=2)
    assert changed[30, 20:60].any() and changed[59, 20:60].any()  # top and bottom edges
    assert changed[30:60, 20].any() and changed[30:60, 59].any()  # left and right edges
    assert not changed[40:50, 30:50].any()  # the box's inside stays clear
    assert not changed[80:, 80:].any()
    orange = np.array([0xE6, 0x9F, 0x00])
    assert (np.abs(drawn[30, 25:55].astype(int) - orange).sum(axis=1) < 40).any()  # in the cpp colour
    both = rendered(faces_cpp=CPP_FACES, faces_python=CPP_FACES)
    assert (both != drawn).any()
    fig, ax = plt.subplots()
    overlay(image, faces_python=CPP_FACES, faces_cpp=CPP_FACES, ax=ax, crop=(10, 20, 50, 50))
    assert ax.get_xlim() == (9.5, 59.5) and ax.get_legend() is not None
    plt.close(fig)


def test_import_mtcnn_lab_needs_no_plotting_or_widgets():
    code = ("import sys, mtcnn_lab, mtcnn_lab.lab.figures; "
            "print(sorted(m for m in ('matplotlib', 'ipywidgets') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]"


def test_layer_axis_labels_each_layer_and_uses_a_log_scale():
    import matplotlib.pyplot as plt

    from mtcnn_lab.lab.figures import layer_axis

    fig, ax = plt.subplots()
    layer_axis(ax, ["l00_conv", "l01_prelu"], "pnet")
    assert [t.get_text() for t in ax.get_xticklabels()] == ["00 conv", "01 prelu"]
    assert ax.get_yscale() == "log" and ax.get_title() == "PNET"
    plt.close(fig)


# --------------------------------------------------------------------------------------------
# paper figures at print size


def relative_luminance(hex_color: str) -> float:
    """WCAG 2 relative luminance of an sRGB ``#rrggbb`` colour."""
    channels = []
    for i in (1, 3, 5):
        c = int(hex_color[i:i + 2], 16) / 255
        channels.append(c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4)
    r, g, b = channels
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_on_white(hex_color: str) -> float:
    return 1.05 / (relative_luminance(hex_color) + 0.05)


def test_backend_colours_stand_out_on_white():
    assert contrast_on_white("#F0E442") < 1.5  # Okabe-Ito yellow: the colour this rule keeps out
    assert contrast_on_white("#000000") == pytest.approx(21.0)
    for name in ("numpy", "torch", "onnx", "coreml", "openvino", "pymtcnn", "fp16"):
        assert contrast_on_white(COLORS[name]) >= 3.0, name


def detections_of(boxes: list[list[float]]) -> Detections:
    b = np.asarray(boxes, np.float32).reshape(-1, 4)
    n = len(b)
    centres = b[:, None, :2] + b[:, None, 2:] * np.array([[0.3, 0.4], [0.7, 0.4], [0.5, 0.6], [0.35, 0.8], [0.65, 0.8]])
    return Detections(boxes=b, confidences=np.full(n, 0.99, np.float32), landmarks=centres.astype(np.float32),
                      boxes_pre_correction=b.copy(), onet_input_boxes=b.copy(), onet_outputs=np.zeros((n, 16)))


def layer_rows(series: str, names: list[str]) -> list[dict]:
    layers = {"pnet": 4, "rnet": 6, "onet": 8}
    return [{series: name, "net": net, "layer": key, "max_abs": 1e-3 * (k + 1), "mean_abs": 1e-4 * (k + 1)}
            for name in names for net, n in layers.items()
            for k, key in enumerate([f"l{i:02d}_conv" for i in range(n)] + ["output"])]


def profile_runs():
    from mtcnn_lab.lab.decoders import ProfileRun

    rng = np.random.default_rng(3)
    upright = rng.integers(0, 256, (320, 180, 3), np.uint8)
    boxes = [[20, 60, 30, 30], [110, 200, 34, 36]]
    turned = np.ascontiguousarray(upright[::-1, ::-1])
    flipped = [[180 - x - w, 320 - y - h, w, h] for x, y, w, h in boxes]
    return {"upright": ProfileRun("upright", {}, (0,), (detections_of(boxes),), upright, 0),
            "opencv-4.6": ProfileRun("opencv-4.6", {}, (0,), (detections_of(flipped[:1]),), turned, 180),
            "opencv-4.5": ProfileRun("opencv-4.5", {}, (0,), (detections_of(boxes),), upright, 0)}


def paper_figure_builders() -> dict:
    from mtcnn_lab.lab import paper_figures as pf
    from mtcnn_lab.weights.sets import load_weights

    mistakes = [{"name": name, "mean_abs": m, "ch1_corr": c, "matches_report": name == "bgr_input"}
                for name, m, c in (("bgr_input", 0.15, -0.73), ("resize_area", 0.035, 0.998),
                                   ("no_normalisation", 65.0, 1.0), ("kernel_transposed", 0.35, 0.77))]
    sizes = [{"net": net, "format": fmt, "precision": p, "bytes": 1000 * (k + 1) * (2 if p == "fp32" else 1)}
             for k, net in enumerate(("pnet", "rnet", "onet")) for fmt in ("onnx", "coreml") for p in ("fp32", "fp16")]
    summary = [{"variant": v, "policy": p, "faces_a": 10, "matched": m}
               for v, p, m in (("onnx", "fp32", 10), ("onnx-fp16", "fp16", 10), ("numpy-fp16-all", "fp16-all", 9))]
    ious = {"onnx": np.ones(10), "onnx-fp16": 1 - np.logspace(-5, -3, 10), "numpy-fp16-all": 1 - np.logspace(-4, -2, 9)}
    backends = ["numpy", "torch", "onnx", "openvino", "onnx-fp16", "numpy-fp16"]
    faces = [{"backend": b, "matched": True, "one_minus_iou": 10.0 ** -(k % 7 + 2), "dx": 0.01 * k, "dy": 0.0,
              "dw": -0.02, "dh": 0.0} for b in backends for k in range(12)]
    runs = [{"backend": b, "threads": t, "median_ms": 10.0 * (k + 1) / t, "p5_ms": 6.0 * (k + 1) / t,
             "p95_ms": 15.0 * (k + 1) / t, "stage_share": {s: 1 / 6 for s in pf.STAGES}}
            for t in (1, 2) for k, b in enumerate(["numpy", "onnx-cpu", "openvino-cpu", "onnx-cpu-fp16"])]
    image = np.random.default_rng(1).integers(0, 256, (240, 320, 3), np.uint8)
    panels = [(image, CPP_FACES, CPP_FACES, f"frame {k}\nC++ 2 · numpy 2") for k in range(4)]
    weights = load_weights("zhang2016")
    return {
        "01_weight_histograms": (lambda: pf.weight_histograms(weights), 7.0),
        "01_prelu_slopes": (lambda: pf.prelu_slopes(weights), 7.0),
        "02_mistake_signatures": (lambda: pf.mistake_signatures(mistakes, {"mean_abs": 0.153, "corr": -0.72}), 3.5),
        "03_model_sizes": (lambda: pf.model_sizes(sizes), 3.5),
        "03_layer_diffs": (lambda: pf.layer_differences(layer_rows("backend", ["torch-cpu", "openvino-cpu",
                                                                               "onnx-cpu-fp16-all"]), "backend",
                                                        "max |Δ|"), 7.0),
        "04_fp16_layers": (lambda: pf.layer_differences(layer_rows("variant", ["onnx-fp16-all", "numpy-fp16-all"]),
                                                        "variant", "|Δ|", ("max_abs", "mean_abs")), 7.0),
        "04_fp16_iou": (lambda: pf.fp16_iou(summary, ious), 3.5),
        "05_overlays": (lambda: pf.face_overlays(panels, "Python (numpy)"), 7.0),
        "05_iou_per_backend": (lambda: pf.iou_per_backend(faces, backends), 7.0),
        "06_latency": (lambda: pf.latency(runs, np.linspace(20, 40, 30)), 7.0),
        "07_decode_profiles": (lambda: pf.decode_profiles(profile_runs(), "upright"), 7.0),
    }


@pytest.mark.parametrize("name", list(paper_figure_builders()))
def test_paper_figure_fits_its_print_width(name):
    from matplotlib.lines import Line2D
    from matplotlib.text import Text

    from mtcnn_lab.lab.figures import OKABE_ITO

    build, width = paper_figure_builders()[name]
    with paper_style():
        fig = build()
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        assert fig.get_size_inches()[0] == pytest.approx(width)
        sizes = [t.get_fontsize() for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
        assert sizes and min(sizes) >= 6.0, f"text below 6 pt: {min(sizes)}"
        figure_box = fig.bbox.padded(1.0)  # one pixel of rounding
        legends = fig.legends + [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
        for legend in legends:
            box = legend.get_window_extent(renderer)
            assert figure_box.contains(box.x0, box.y0) and figure_box.contains(box.x1, box.y1), "legend outside"
        tight = fig.get_tightbbox(renderer)
        assert tight.width <= width + 0.01, f"content {tight.width:.2f} in wide, beyond the figure"
        import matplotlib.colors as mcolors

        # every backend colour has 3:1 on white (above); the C++ orange and port blue 2.2:1, yellow only 1.3:1
        data_lines = [line for ax in fig.axes for line in ax.get_lines() if line.get_linestyle() not in ("None", "")]
        for line in data_lines + [h for legend in legends for h in legend.legend_handles if isinstance(h, Line2D)]:
            color = mcolors.to_hex(line.get_color()).upper()
            assert color != OKABE_ITO["yellow"] and contrast_on_white(color) >= 2.0, f"faint line {color}"
    plt.close(fig)


def test_latency_bars_span_p5_to_p95_and_name_every_colour():
    from mtcnn_lab.lab import paper_figures as pf

    runs = [{"backend": "numpy", "threads": 1, "median_ms": 12.0, "p5_ms": 7.0, "p95_ms": 30.0,
             "stage_share": {"pnet": 0.5, "onet": 0.5}}]
    cpp = np.arange(1.0, 102.0)  # p5 6, median 51, p95 96
    with paper_style():
        fig = pf.latency(runs, cpp)
        ax = fig.axes[0]
        spans = sorted(tuple(line.get_xdata()) for line in ax.get_lines() if len(line.get_xdata()) == 2)
        assert spans == [(6.0, 96.0), (7.0, 30.0)]
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        assert {"numpy", "C++ OpenFace", "1 thread"} <= set(labels)
    plt.close(fig)


def test_latency_stage_shares_come_from_the_fewest_threads_timed_and_any_thread_count_draws():
    from matplotlib.patches import Rectangle

    from mtcnn_lab.lab import paper_figures as pf

    runs = [{"backend": b, "threads": t, "median_ms": 10.0 * t, "p5_ms": 5.0 * t, "p95_ms": 20.0 * t,
             "stage_share": {"pnet": 0.25 * t, "onet": 1 - 0.25 * t}} for b in ("numpy", "onnx") for t in (2, 3)]
    runs += [dict(runs[0], threads=t) for t in (4, 5, 6)] + [dict(runs[0], threads=None)]
    with paper_style():
        fig = pf.latency(runs, np.linspace(20, 40, 30))  # C++ is timed at 1 thread, the backends from 2 on
        ax2 = fig.axes[1]
        widths = sorted(round(p.get_width(), 6) for p in ax2.patches if isinstance(p, Rectangle) and p.get_width())
        assert widths == [0.5, 0.5, 0.5, 0.5]  # pnet 0.5 and onet 0.5 of both backends at 2 threads
        assert "2 threads" in ax2.get_xlabel() and not [t for t in ax2.texts if "no stage" in t.get_text()][1:]
        labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
        assert {"1 thread", "6 threads", "default threads"} <= set(labels)
    plt.close(fig)


def test_faces_region_contains_the_faces_at_the_asked_aspect():
    from mtcnn_lab.lab.paper_figures import faces_region

    x, y, w, h = faces_region(np.array([[100, 50, 20, 20], [150, 80, 30, 40]]), 400, 300, aspect=4 / 3, pad=0.5)
    assert w / h == pytest.approx(4 / 3)
    assert x <= 100 - 12.5 and y <= 50 - 12.5 and x + w >= 180 + 12.5 and y + h >= 120 + 12.5  # median side 25
    assert 0 <= x and 0 <= y and x + w <= 400 and y + h <= 300
    assert faces_region(np.zeros((0, 4)), 400, 300, aspect=1.0) == (0.0, 0.0, 400.0, 300.0)


def test_decode_profiles_one_panel_per_orientation_cropped_to_the_same_faces():
    from mtcnn_lab.lab import paper_figures as pf

    with paper_style():
        fig = pf.decode_profiles(profile_runs(), "upright")
        upright, turned = fig.axes
        assert "upright: 2" in upright.get_title() and "opencv-4.5: 2" in upright.get_title()
        assert "180" in turned.get_title() and "opencv-4.6: 1" in turned.get_title()
        # the turned panel shows the same region, turned: its limits mirror the upright panel's in the 180x320 frame
        (ux0, ux1), (uy1, uy0) = upright.get_xlim(), upright.get_ylim()
        (tx0, tx1), (ty1, ty0) = turned.get_xlim(), turned.get_ylim()
        assert (tx0 + 0.5, tx1 + 0.5) == pytest.approx((180 - (ux1 + 0.5), 180 - (ux0 + 0.5)))
        assert (ty0 + 0.5, ty1 + 0.5) == pytest.approx((320 - (uy1 + 0.5), 320 - (uy0 + 0.5)))
    plt.close(fig)
