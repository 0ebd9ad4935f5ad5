"""Reading images: BGR uint8 (H, W, 3), C-contiguous, exactly what OpenFace gets from
``cv::imread(path, IMREAD_COLOR)``. 16-bit files become 8-bit (the high byte, as OpenCV's decoders do),
gray files become 3 equal channels and an alpha channel is dropped. OpenCV and numpy errors never escape:
a bad input raises a one-line :class:`mtcnn_lab.errors.InputError`.
"""

from __future__ import annotations

import hashlib
import os
import re
import struct

import cv2
import numpy as np

from mtcnn_lab.errors import InputError, ParameterError
from mtcnn_lab.io.paths import PathLike, check_file, is_video, path_text, show_path

# A JPEG marker outside entropy-coded data: 0xFF (plus fill bytes) followed by anything but a
# stuffed zero, a restart marker or another 0xFF.
_JPEG_MARKER = re.compile(rb"\xff+[^\x00\xff\xd0-\xd7]")


_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})
# Start-of-frame markers (their segment holds the image size); C4, C8 and CC are other segments.
_JPEG_FRAME = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}

ENV_MAX_PIXELS = "MTCNN_LAB_MAX_IMAGE_PIXELS"
DEFAULT_MAX_PIXELS = 250_000_000
"""Images whose header declares more pixels (width x height) are refused before they are decoded, unless
``$MTCNN_LAB_MAX_IMAGE_PIXELS`` sets another limit: decoding takes about 8 bytes per pixel."""


def _scan_jpeg(data: bytes) -> tuple[bool, tuple[int, int] | None]:
    """``(truncated, (width, height))`` of a JPEG stream: truncated when it ends before its end-of-image marker,
    the size from its first frame header (None when there is none before the stream ends).

    libjpeg decodes a truncated file anyway (it fills the missing rows with gray and prints
    "Premature end of JPEG file"), which would silently give the detector a damaged image. The
    marker segments are walked from the start so that data appended after the image (thumbnails,
    multi-picture extensions) cannot hide a truncation. Anything that does not look like a JPEG
    returns ``(False, None)``: the decoder decides.
    """
    n = len(data)
    if not data.startswith(b"\xff\xd8"):
        return False, None
    size = None
    pos = 2
    while True:
        if pos >= n:
            return True, size
        if data[pos] != 0xFF:
            return False, size  # not a marker where one should be: leave the verdict to libjpeg
        while pos < n and data[pos] == 0xFF:
            pos += 1
        if pos >= n:
            return True, size
        marker = data[pos]
        pos += 1
        if marker == 0xD9:  # EOI
            return False, size
        if marker in _JPEG_STANDALONE:
            continue
        if pos + 2 > n:
            return True, size
        if marker in _JPEG_FRAME and size is None and pos + 7 <= n:  # length, precision, height, width
            height, width = struct.unpack_from(">HH", data, pos + 3)
            size = width, height
        pos += int.from_bytes(data[pos : pos + 2], "big")
        if marker == 0xDA:  # SOS: entropy-coded data follows until the next real marker
            match = _JPEG_MARKER.search(data, min(pos, n))
            if match is None:
                return True, size
            pos = match.start()


def declared_size(data: bytes) -> tuple[int, int] | None:
    """``(width, height)`` in pixels as the header of a PNG, JPEG, BMP, GIF or WebP file declares it, without
    decoding; None for other formats or a header cut short."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR" and len(data) >= 24:
        return struct.unpack_from(">II", data, 16)
    if data.startswith(b"\xff\xd8"):
        return _scan_jpeg(data)[1]
    if data.startswith(b"BM") and len(data) >= 26:
        if struct.unpack_from("<I", data, 14)[0] == 12:  # OS/2 header: 16-bit sizes
            return struct.unpack_from("<HH", data, 18)
        width, height = struct.unpack_from("<ii", data, 18)
        return abs(width), abs(height)  # a negative height: rows stored top-down
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        return struct.unpack_from("<HH", data, 6)
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP" and len(data) >= 30:
        chunk = data[12:16]
        if chunk == b"VP8X":  # extended: 24-bit canvas width - 1 and height - 1
            return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
        if chunk == b"VP8L":  # lossless: 14-bit width - 1 and height - 1 after the signature byte
            bits = int.from_bytes(data[21:25], "little")
            return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
        if chunk == b"VP8 ":  # lossy: 14-bit width and height after the key frame's start code
            width, height = struct.unpack_from("<HH", data, 26)
            return width & 0x3FFF, height & 0x3FFF
    return None


def max_image_pixels() -> int:
    """The pixel limit: ``$MTCNN_LAB_MAX_IMAGE_PIXELS`` when set, else :data:`DEFAULT_MAX_PIXELS`."""
    value = os.environ.get(ENV_MAX_PIXELS, "").strip()
    if not value:
        return DEFAULT_MAX_PIXELS
    if not value.isdigit() or int(value) < 1:
        raise ParameterError(f"{ENV_MAX_PIXELS} must be a positive whole number of pixels, not {value!r}; "
                             f"unset it for the default of {DEFAULT_MAX_PIXELS}")
    return int(value)


def pixels_sha256(image: np.ndarray) -> str:
    """SHA-256 (hex) of an image's pixel bytes in C order (BGR, rows top to bottom): the C++ reference's
    ``pixels_bgr_sha256``."""
    return hashlib.sha256(np.ascontiguousarray(image).tobytes()).hexdigest()


def as_bgr_uint8(image: object, name: str = "image") -> np.ndarray:
    """Validate an array given to the detector and return it as BGR uint8 ``H×W×3``, C-contiguous.

    Accepted: ``uint8`` arrays of shape ``H×W×3`` (returned as is, or a C-contiguous copy),
    ``H×W`` or ``H×W×1`` gray (expanded to 3 equal channels, as ``cv2.imread`` does) and
    ``H×W×4`` BGRA (alpha dropped). Channel order cannot be checked: pass BGR, not RGB.
    Anything else raises InputError naming ``name``, the dtype and shape received and what to
    pass instead.
    """
    want = "pass a BGR uint8 array of shape H×W×3 (as cv2.imread returns)"
    if not isinstance(image, np.ndarray):
        raise InputError(f"{name} must be a numpy.ndarray, got {type(image).__name__}; {want}")
    got = f"dtype {image.dtype}, shape {image.shape}"
    if image.ndim not in (2, 3):
        raise InputError(f"{name} has {image.ndim} dimensions ({got}); {want}")
    if image.size == 0:
        raise InputError(f"{name} is empty ({got}); {want}")
    if image.dtype != np.uint8:
        if image.dtype == np.uint16:
            fix = "convert it as cv2.imread does, e.g. (image >> 8).astype(np.uint8)"
        elif np.issubdtype(image.dtype, np.floating):
            fix = (
                "pass uint8 values 0..255, e.g. np.clip(image * 255, 0, 255).round()"
                ".astype(np.uint8) for values in [0, 1]"
            )
        else:
            fix = "convert it to uint8 0..255 as cv2.imread does"
        raise InputError(f"{name} has {got}; the detector needs uint8: {fix}")
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    channels = image.shape[2]
    if channels == 3:
        return np.ascontiguousarray(image)
    if channels == 1:
        return cv2.cvtColor(np.ascontiguousarray(image[:, :, 0]), cv2.COLOR_GRAY2BGR)
    if channels == 4:
        return np.ascontiguousarray(image[:, :, :3])
    hint = ""
    if image.shape[0] in (1, 3, 4):
        hint = " (channels first? use image.transpose(1, 2, 0))"
    raise InputError(f"{name} has {channels} channels ({got}){hint}; {want}")


def read_image(path: PathLike) -> np.ndarray:
    """Read an image file as OpenFace does: ``cv2.imread(path, IMREAD_COLOR)``.

    Returns BGR uint8 ``H×W×3``, C-contiguous. Raises InputError for a missing path, a directory,
    an empty, truncated, corrupt or unsupported file, or a video file.
    """
    p = path_text(path)
    check_file(p)
    shown = show_path(p)
    if is_video(p):
        raise InputError(
            f"{shown} is a video, not an image; read its frames with iter_video_frames() or iter_inputs()"
        )
    try:
        with open(p, "rb") as f:
            data = f.read()
    except OSError as err:
        raise InputError(f"{shown}: cannot read the file ({err.strerror}); check the path") from None
    size, limit = declared_size(data), max_image_pixels()
    if size is not None and size[0] * size[1] > limit:
        raise InputError(
            f"{shown} declares {size[0]}x{size[1]} pixels ({size[0] * size[1] / 1e6:.0f} megapixels), more than "
            f"the limit of {limit} pixels; shrink the image, or raise the limit: {ENV_MAX_PIXELS}=<pixels>"
        )
    if _scan_jpeg(data)[0]:
        raise InputError(
            f"{shown} is a truncated JPEG (the data ends before the end-of-image marker); "
            "copy or download the complete file again"
        )
    image = None
    try:
        image = cv2.imread(p, cv2.IMREAD_COLOR)
        if image is None:  # e.g. a path OpenCV cannot open (non-ASCII on Windows)
            image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    except cv2.error:
        image = None
    if image is None:
        raise InputError(
            f"cannot decode {shown} as an image (corrupt file or unsupported format); "
            "export it again as JPEG or PNG"
        )
    return as_bgr_uint8(image, name=shown)
