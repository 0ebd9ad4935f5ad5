"""Limits on what hostile or oversized inputs may cost: the pixel count of an image (read from its header before
it is decoded) and the nesting depth of the JSON files a run reads back."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from mtcnn_lab.errors import InputError, ParameterError, StaleResults
from mtcnn_lab.io import images
from mtcnn_lab.io.entries import read_done_frames, resume_jsonl, settings_file
from mtcnn_lab.io.images import read_image

ENV = "MTCNN_LAB_MAX_IMAGE_PIXELS"


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def crafted_png(path: Path, width: int, height: int) -> Path:
    """A PNG of a few dozen bytes whose header declares ``width`` x ``height`` RGB pixels (and holds none)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", zlib.compress(b""))
                     + _png_chunk(b"IEND", b""))
    return path


def test_an_image_declaring_more_pixels_than_the_limit_is_refused_before_decoding(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    path = crafted_png(tmp_path / "huge.png", 30000, 30000)
    decoded = []
    monkeypatch.setattr(images.cv2, "imread", lambda *args: decoded.append(args))
    limit = images.DEFAULT_MAX_PIXELS
    with pytest.raises(InputError, match=rf"declares 30000x30000 pixels .*limit of {limit} .*{ENV}"):
        read_image(path)
    assert decoded == []  # refused from the header alone


@pytest.mark.parametrize(("suffix", "params"), [
    (".png", []), (".jpg", []), (".jpg", [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]), (".bmp", []),
    (".webp", [cv2.IMWRITE_WEBP_QUALITY, 80]), (".webp", [cv2.IMWRITE_WEBP_QUALITY, 101])])  # lossy, lossless
def test_the_limit_is_read_from_each_format_s_header_and_overridable(tmp_path, monkeypatch, suffix, params):
    image = np.random.default_rng(0).integers(0, 256, (30, 40, 3), np.uint8)
    path = tmp_path / f"small{suffix}"
    assert cv2.imwrite(str(path), image, params)
    monkeypatch.setenv(ENV, str(40 * 30 - 1))
    with pytest.raises(InputError, match=f"declares 40x30 pixels .*limit of 1199 pixels.*{ENV}="):
        read_image(path)
    monkeypatch.setenv(ENV, str(40 * 30))
    assert read_image(path).shape == (30, 40, 3)


@pytest.mark.parametrize("value", ["many", "0", "-5", "1e9"])
def test_a_bad_limit_names_the_variable(tmp_path, monkeypatch, value):
    monkeypatch.setenv(ENV, value)
    path = tmp_path / "small.png"
    cv2.imwrite(str(path), np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ParameterError, match=f"{ENV} must be a positive whole number of pixels"):
        read_image(path)


DEEP = "[" * 100_000 + "]" * 100_000  # nested deeper than Python's recursion limit


def test_a_deeply_nested_line_of_per_frame_results_is_one_line(tmp_path):
    jsonl = tmp_path / "frames.jsonl"
    jsonl.write_text(DEEP + "\n" + json.dumps({"frame": 1, "faces": []}) + "\n")  # not a torn last line
    with pytest.raises(StaleResults, match="not a per-frame results file.*line 1"):
        read_done_frames(jsonl)


def test_a_deeply_nested_settings_file_is_another_run_s(tmp_path):
    jsonl = tmp_path / "frames.jsonl"
    jsonl.write_text(json.dumps({"frame": 0, "faces": []}) + "\n")
    settings_file(jsonl).write_text(DEEP)
    with pytest.raises(StaleResults, match="holds frames of an earlier run"):
        resume_jsonl(jsonl, {"backend": "numpy"})
    assert settings_file(jsonl).read_text() == DEEP  # left as it is
