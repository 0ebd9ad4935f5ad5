"""Decode profiles: each reproduces its decoder on phone-like clips made here (H.264/HEVC tagged BT.709,
display matrices, full range, 10-bit HLG, variable frame rate, damaged packets); ``probe`` and ``frames``."""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from mtcnn_lab.errors import InputError, ParameterError
from mtcnn_lab.io.decode.probe import probe_video
from mtcnn_lab.io.decode.profiles import PROFILE_NAMES, PROFILES, clockwise_rotation, get_profile
from mtcnn_lab.io.decode.record import decode_record
from mtcnn_lab.io.frame_export import export_frames
from mtcnn_lab.io.images import pixels_sha256, read_image
from mtcnn_lab.io.videos import count_frames, iter_video_frames
from mtcnn_lab.lab.debian_opencv import debian_decode
from tests.conftest import DEV_REFERENCE, SAMPLES, require_shared
from tests.video_clips import (
    PATCH,
    PATCHES,
    damage_packets,
    require_debian_opencv,
    upright_picture,
    write_clip,
)

W, H = 192, 336  # the test picture, portrait, as displayed


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("clips")
    return {
        "h264": write_clip(root / "h264_bt709.mp4"),
        "hevc": write_clip(root / "hevc_bt709.mp4", codec="libx265"),
        "rot-90": write_clip(root / "portrait_rot-90.mp4", display_rotation=-90),
        "rot90": write_clip(root / "rot90.mp4", display_rotation=90),
        "rot180": write_clip(root / "rot180.mp4", display_rotation=180),
        "hevc-rot-90": write_clip(root / "hevc_rot-90.mov", codec="libx265", display_rotation=-90),
        "full": write_clip(root / "full_range.mp4", colour_range=2),
        "hlg10": write_clip(root / "hlg10.mp4", codec="libx265", pix_fmt="yuv420p10le", matrix=9, primaries=9,
                            transfer=18),
        "vfr": write_clip(root / "vfr.mp4", pts=[0, 1, 3, 4, 8, 9, 15, 16]),
        "untagged": write_clip(root / "untagged.mp4", matrix=2, primaries=2, transfer=2, colour_range=0),
    }


def _hashes(path, decode):
    return [pixels_sha256(frame) for _, frame in iter_video_frames(path, decode=decode)]


# ---------------------------------------------------------------------------------------------
# the profiles' rules, checked against hand-written tables
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("rotation", "angle", "expected"), [
    ("display", -90, 90), ("display", 90, 270), ("display", 180, 180), ("display", -180, 180),
    ("display", None, 0), ("display", 45, 0),
    ("reversed", -90, 270), ("reversed", 90, 90), ("reversed", 180, 180), ("reversed", None, 0),
    ("none", -90, 0), ("none", 180, 0),
])
def test_clockwise_rotation_of_each_rule(rotation, angle, expected):
    profile = next(p for p in PROFILES.values() if p.rotation == rotation)
    assert clockwise_rotation(profile, angle) == expected


def test_unknown_profile_is_a_one_line_error_naming_the_choices():
    with pytest.raises(ParameterError) as info:
        get_profile("opencv-9")
    assert str(info.value) == ("unknown decode profile 'opencv-9'; choose one of opencv-4.6, opencv-4.0, opencv-4.5, "
                               "opencv-4.13, opencv-python, upright (`mtcnn-lab probe VIDEO` shows how they differ "
                               "on a file)")
    assert get_profile(None).name == "opencv-4.6" and get_profile(PROFILES["upright"]) is PROFILES["upright"]


def test_opencv_python_rotation_is_opencvs_own():
    with pytest.raises(ParameterError, match="profile opencv-python reads through OpenCV, which applies its own"):
        clockwise_rotation(PROFILES["opencv-python"], -90)


# ---------------------------------------------------------------------------------------------
# rotation direction: where the picture's top-left marker ends up
# ---------------------------------------------------------------------------------------------

def _corner_of_white_marker(frame: np.ndarray) -> str:
    h, w = frame.shape[:2]
    corners = {"top-left": frame[:16, :16], "top-right": frame[:16, w - 16:], "bottom-left": frame[h - 16:, :16],
               "bottom-right": frame[h - 16:, w - 16:]}
    return max(corners, key=lambda k: corners[k].mean())


@pytest.mark.parametrize(("clip", "profile", "shape", "corner"), [
    ("rot-90", "upright", (H, W), "top-left"),
    ("rot-90", "opencv-4.5", (H, W), "top-left"),
    ("rot-90", "opencv-4.6", (H, W), "bottom-right"),  # upside down (OpenCV issue 22088)
    ("rot-90", "opencv-4.0", (W, H), "bottom-left"),  # as stored: turned 90 degrees counter-clockwise
    ("rot90", "upright", (H, W), "top-left"),
    ("rot90", "opencv-4.6", (H, W), "bottom-right"),
    ("rot180", "upright", (H, W), "top-left"),
    ("rot180", "opencv-4.6", (H, W), "top-left"),  # 180 degrees is the same either way round
    ("rot180", "opencv-4.0", (H, W), "bottom-right"),
    ("hevc-rot-90", "upright", (H, W), "top-left"),
    ("hevc-rot-90", "opencv-4.6", (H, W), "bottom-right"),
])
def test_rotation_direction_of_each_profile(clips, clip, profile, shape, corner):
    frame = next(iter_video_frames(clips[clip], [0], decode=profile))[1]
    assert frame.shape[:2] == shape
    assert _corner_of_white_marker(frame) == corner
    record = decode_record(clips[clip], profile)
    assert record["upright"] is (corner == "top-left")


def test_upright_picture_matches_what_was_encoded(clips):
    for clip in ("rot-90", "rot90", "rot180", "h264"):
        frame = next(iter_video_frames(clips[clip], [0], decode="upright"))[1]
        assert np.abs(frame.astype(int) - upright_picture(0, W, H)).mean() < 3, clip  # lossy codec


# ---------------------------------------------------------------------------------------------
# colour conversion: flat patches against the BT.601 / BT.709 equations by hand
# ---------------------------------------------------------------------------------------------

def _ycbcr_to_bgr(y, cb, cr, kr, kb, full):
    """ITU-R BT.601/709 YCbCr (8-bit) -> BGR, the textbook equations."""
    if full:
        yn, pb, pr = y / 255.0, (cb - 128) / 255.0, (cr - 128) / 255.0
    else:
        yn, pb, pr = (y - 16) / 219.0, (cb - 128) / 224.0, (cr - 128) / 224.0
    kg = 1 - kr - kb
    r = yn + 2 * (1 - kr) * pr
    b = yn + 2 * (1 - kb) * pb
    g = (yn - kr * r - kb * b) / kg
    return np.clip(np.round(np.array([b, g, r]) * 255), 0, 255)


@pytest.mark.parametrize(("clip", "profile", "coefficients", "full"), [
    ("h264", "opencv-4.6", (0.299, 0.114), False),  # OpenCV 4.x: BT.601 whatever the tag
    ("h264", "upright", (0.2126, 0.0722), False),  # the tag: BT.709
    ("hevc", "opencv-4.6", (0.299, 0.114), False),
    ("hevc", "upright", (0.2126, 0.0722), False),
    ("full", "opencv-4.6", (0.299, 0.114), True),  # full range from the (yuvj) pixel format
    ("full", "upright", (0.2126, 0.0722), True),
    ("untagged", "upright", (0.299, 0.114), False),  # untagged: BT.601, as swscale defaults
])
def test_patch_colours_follow_the_profiles_matrix(clips, clip, profile, coefficients, full):
    import av

    with av.open(str(clips[clip])) as container:
        yuv = next(container.decode(video=0)).to_ndarray(format="yuv444p")  # the planes, chroma repeated
    frame = next(iter_video_frames(clips[clip], [0], decode=profile))[1]
    other = (0.2126, 0.0722) if coefficients == (0.299, 0.114) else (0.299, 0.114)
    worst_other = 0.0
    for i in range(len(PATCHES)):
        y0, x0 = 64 + PATCH * (i // 4) + PATCH // 2, 8 + PATCH * (i % 4) + PATCH // 2
        y, cb, cr = (float(yuv[c, y0, x0]) for c in range(3))
        got = frame[y0, x0].astype(int)
        # swscale's fixed-point arithmetic rounds within 2 levels of the exact equations
        assert np.abs(got - _ycbcr_to_bgr(y, cb, cr, *coefficients, full)).max() <= 2, (i, got)
        worst_other = max(worst_other, np.abs(got - _ycbcr_to_bgr(y, cb, cr, *other, full)).max())
    assert worst_other >= 8  # the patches tell the two matrices apart


def test_bt601_and_bt709_differ_on_a_bt709_clip(clips):
    a = next(iter_video_frames(clips["h264"], [0], decode="opencv-4.6"))[1].astype(int)
    b = next(iter_video_frames(clips["h264"], [0], decode="upright"))[1].astype(int)
    assert np.abs(a - b).max() >= 10  # the profiles are not the same conversion


# ---------------------------------------------------------------------------------------------
# the real decoders: Debian's OpenCV 4.6 and the installed opencv-python
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("clip", ["h264", "hevc", "rot-90", "rot90", "rot180", "hevc-rot-90", "full", "vfr",
                                  "untagged"])
def test_opencv_4_6_profile_equals_debian_opencv_frame_for_frame(clips, clip):
    require_debian_opencv()
    theirs = debian_decode(clips[clip])
    ours = _hashes(clips[clip], "opencv-4.6")
    assert len(ours) == len(theirs["hashes"]) > 0
    assert ours == theirs["hashes"]


def test_detect_video_frame_hashes_equal_debian_opencv(clips):
    """What detect_video detects on (its pixels_bgr_sha256) is Debian OpenCV 4.6's frame: the C++ run's input."""
    require_debian_opencv()
    from mtcnn_lab.detector import MTCNN
    from mtcnn_lab.video.stream import detect_video

    with MTCNN(backend="numpy", weights="zhang2016") as detector:
        entries = list(detect_video(detector, clips["rot-90"], progress=False, frame_hashes=True))
    assert [e["pixels_bgr_sha256"] for e in entries] == debian_decode(clips["rot-90"])["hashes"]
    assert all(e["width"] == W and e["height"] == H for e in entries)


@pytest.mark.parametrize("damaged", [range(0, 1), range(1, 3), range(5, 6)])
def test_damaged_packets_end_the_video_where_opencv_4_6_ends_it(tmp_path, damaged):
    require_debian_opencv()
    clip = damage_packets(write_clip(tmp_path / "damaged.mp4", frames=12), damaged)
    theirs = debian_decode(clip)["hashes"]
    if not theirs:
        with pytest.raises(InputError, match="first frame is damaged"):
            _hashes(clip, "opencv-4.6")
    else:
        assert _hashes(clip, "opencv-4.6") == theirs


def test_ten_bit_residual_against_debian_opencv_is_small(clips, tmp_path):
    """10-bit: swscale's 10->8 bit path changed since FFmpeg 5.1, so the pixels are close, not equal
    (benchmarks/README.md reports the residual and its effect on boxes)."""
    require_debian_opencv()
    theirs = np.load(tmp_path / "f.npy") if debian_decode(clips["hlg10"], tmp_path / "f.npy") else None
    ours = np.stack([f for _, f in iter_video_frames(clips["hlg10"], decode="opencv-4.6")])
    assert ours.shape == theirs.shape
    diff = np.abs(ours.astype(int) - theirs)
    assert (diff == 0).mean() > 0.5 and diff.mean() < 1.0


def test_opencv_python_profile_is_cv2(clips):
    for clip in ("rot-90", "h264"):
        capture, expected = cv2.VideoCapture(str(clips[clip])), []
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            expected.append(pixels_sha256(frame))
        capture.release()
        assert _hashes(clips[clip], "opencv-python") == expected


def test_every_profile_gives_the_reference_pixels_of_the_openface_samples():
    """The C++ reference's 12 video frames (cut by opencv-python; their pixels_bgr_sha256): the untagged
    MPEG-4 and WMV2 samples decode the same in every profile, so the default keeps the samples' parity."""
    require_shared("reference", "cpp_mtcnn_dev.json")
    reference = json.loads(DEV_REFERENCE.read_text())["results"]
    frames = {e["image"]: e["pixels_bgr_sha256"] for e in reference if e["image"].startswith("frames/")}
    assert len(frames) == 12
    wanted: dict[str, dict[int, str]] = {}
    for name, sha in frames.items():
        stem, index = name[len("frames/"):-len(".png")].rsplit("_f", 1)
        wanted.setdefault(stem, {})[int(index)] = sha
    for profile in PROFILE_NAMES:
        for stem, by_index in wanted.items():
            video = next(p for p in SAMPLES.iterdir() if p.stem == stem and p.suffix in (".avi", ".wmv"))
            got = {i: pixels_sha256(f) for i, f in iter_video_frames(video, sorted(by_index), decode=profile)}
            assert got == by_index, (profile, stem)


# ---------------------------------------------------------------------------------------------
# probe and the decode record
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("clip", "rotation", "matrix", "transfer", "depth", "rng"), [
    ("h264", None, "bt709", "bt709", 8, "tv"),
    ("rot-90", -90.0, "bt709", "bt709", 8, "tv"),
    ("rot180", 180.0, "bt709", "bt709", 8, "tv"),
    ("hlg10", None, "bt2020nc", "arib-std-b67", 10, "tv"),
    ("full", None, "bt709", "bt709", 8, "pc"),
    ("untagged", None, "unknown", "unknown", 8, "unknown"),
])
def test_probe_reports_what_was_written(clips, clip, rotation, matrix, transfer, depth, rng):
    info = probe_video(clips[clip])
    assert info.display_rotation in (rotation, -rotation if rotation == 180.0 else rotation)
    assert (info.matrix, info.transfer, info.bit_depth, info.range) == (matrix, transfer, depth, rng)
    stored = (H, W) if rotation in (None, 180.0) else (W, H)
    assert (info.height, info.width) == stored


def test_probe_command_text_and_json(clips):
    from mtcnn_lab.cli import main

    done = subprocess.run([sys.executable, "-m", "mtcnn_lab.cli", "probe", str(clips["rot-90"]), "--json"],
                          capture_output=True, text=True, check=True)
    report = json.loads(done.stdout)[str(clips["rot-90"])]
    assert report["stream"]["display_rotation"] == -90.0
    assert report["profiles"]["opencv-4.6"]["picture"] == "upside down"
    assert report["profiles"]["upright"]["picture"] == "upright"
    assert any("opencv-4.6 gives this video's frames upside down" in n for n in report["notes"])
    assert main(["probe", str(clips["h264"])]) == 0


@pytest.mark.parametrize(("content", "message"), [
    (None, "no such file"), (b"", "is empty"), (b"this is not a video" * 100, "cannot open video"),
])
def test_probe_of_a_bad_file_is_one_line(tmp_path, capsys, content, message):
    from mtcnn_lab.cli import main

    bad = tmp_path / "bad.mp4"
    if content is not None:
        bad.write_bytes(content)
    assert main(["probe", str(bad)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err


# ---------------------------------------------------------------------------------------------
# frames: lossless PNGs and their manifest
# ---------------------------------------------------------------------------------------------

def test_frames_pngs_hold_the_profiles_pixels(clips, tmp_path):
    out = tmp_path / "frames"
    manifest = export_frames(clips["vfr"], out, every=2, decode="opencv-4.6", progress=False)
    expected = {i: pixels_sha256(f) for i, f in iter_video_frames(clips["vfr"], step=2)}
    assert [f["index"] for f in manifest["frames"]] == sorted(expected) == [0, 2, 4, 6]
    for row in manifest["frames"]:
        assert pixels_sha256(read_image(out / row["file"])) == row["pixels_bgr_sha256"] == expected[row["index"]]
    assert [row["timestamp_s"] for row in manifest["frames"]] == pytest.approx([0, 3 / 30, 8 / 30, 15 / 30])
    on_disk = json.loads((out / "frames.json").read_text())
    assert on_disk["decoding"]["profile"] == "opencv-4.6" and on_disk["decoding"]["frames"] == 4


def test_frames_never_overwrite_silently(clips, tmp_path):
    out = tmp_path / "frames"
    export_frames(clips["h264"], out, progress=False)
    with pytest.raises(ParameterError, match="already holds frames.*--force"):
        export_frames(clips["h264"], out, progress=False)
    export_frames(clips["h264"], out, every=4, force=True, progress=False)
    assert sorted(p.name for p in out.glob("*.png")) == ["frame_000000.png", "frame_000004.png"]


# ---------------------------------------------------------------------------------------------
# detect records how every video was decoded
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("every", [None, 3])
def test_detect_records_the_decoding_and_warns_when_not_upright(clips, tmp_path, capsys, every):
    from mtcnn_lab.cli import main

    out = tmp_path / "out.json"
    args = ["detect", str(clips["rot-90"]), "--backend", "numpy", "--weights", "zhang2016", "--json", str(out),
            "--frame-hashes", "--workers", "1"] + ([] if every is None else ["--every", str(every)])
    assert main(args) == 0
    err = capsys.readouterr().err
    assert err.count("not as the video's display matrix says") == 1
    data = json.loads(out.read_text())
    record = data["meta"]["decoding"][str(clips["rot-90"])]
    assert data["meta"]["decode"] == record["profile"] == "opencv-4.6"
    assert record["display_rotation"] == -90.0 and record["rotation_applied"] == 270 and not record["upright"]
    assert record["codec"] == "h264" and record["libraries"]["pyav"]
    assert [e["frame"] for e in data["results"]] == ([1, 4, 6] if every is None else [0, 3, 6])
    assert record["frames"] == 3
    frames = {i: pixels_sha256(f) for i, f in iter_video_frames(clips["rot-90"])}
    for entry in data["results"]:
        assert entry["pixels_bgr_sha256"] == frames[entry["frame"]]
    assert main([*args, "--decode", "upright", "--force"]) == 0
    assert "display matrix says" not in capsys.readouterr().err
    assert json.loads(out.read_text())["meta"]["decoding"][str(clips["rot-90"])]["upright"] is True


def test_count_frames_is_the_same_in_every_profile(clips):
    assert {count_frames(clips["vfr"], p) for p in PROFILE_NAMES} == {8}
