"""Frames of a video through libavcodec (PyAV) and swscale, converted and turned as a decode profile says.

OpenCV's FFmpeg backend (``CvCapture_FFMPEG::retrieveFrame`` in OpenCV's ``cap_ffmpeg_impl.hpp``) converts
each decoded frame at its own size to BGR24 with ``sws_getCachedContext(..., SWS_BICUBIC, ...)`` without
``sws_setColorspaceDetails`` (so BT.601, the range from the pixel format), then turns it with ``cv::rotate``;
:class:`PyAVReader` does the same steps, and offers ``grab``/``retrieve``/``release`` like
``cv2.VideoCapture`` so one sequential reading loop serves both (docs/video_decoding.md).
"""

from __future__ import annotations

import logging

import av
import cv2
import numpy as np
from av.video.reformatter import ColorRange, Colorspace, Interpolation

from mtcnn_lab.errors import InputError
from mtcnn_lab.io.decode.profiles import DecodeProfile, clockwise_rotation
from mtcnn_lab.io.paths import reencode_hint, show_path

__all__ = ["PyAVReader", "conversion_of", "CV2_ROTATE"]

log = logging.getLogger(__name__)

#: ``cv::rotate`` codes by clockwise degrees.
CV2_ROTATE = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}

# swscale's matrices by the stream's matrix tag (FFmpeg's AVColorSpace codes); untagged: BT.601, swscale's own default
_TAGGED_MATRIX = {1: Colorspace.ITU709, 4: Colorspace.FCC, 5: Colorspace.ITU601, 6: Colorspace.ITU601,
                  7: Colorspace.SMPTE240M, 9: Colorspace.BT2020, 10: Colorspace.BT2020}


def conversion_of(profile: DecodeProfile, frame: av.VideoFrame) -> tuple[Colorspace, ColorRange | None]:
    """The swscale source matrix and range (None: from the pixel format, as swscale defaults) ``profile``
    uses for ``frame``."""
    if profile.colour == "bt601":
        return Colorspace.ITU601, None
    matrix = _TAGGED_MATRIX.get(int(frame.colorspace), Colorspace.ITU601)
    full = int(frame.color_range) == 2 or frame.format.name.startswith("yuvj")
    return matrix, ColorRange.JPEG if full else ColorRange.MPEG


class PyAVReader:
    """Sequential decoding of a video's first video stream, ``cv2.VideoCapture``-like.

    ``grab()`` decodes the next frame (False at the end); ``retrieve()`` converts the grabbed frame to
    BGR uint8 ``H×W×3`` (after the profile's rotation); ``release()`` closes the file. Decoding ends at
    the first packet that fails to decode (``damaged`` then holds FFmpeg's message), where OpenFace's
    reading of the video ends. ``threads``: libavcodec's and swscale's threads (None: their own choice).
    """

    def __init__(self, path: str, profile: DecodeProfile, threads: int | None = None) -> None:
        self.path = path
        self.profile = profile
        self.damaged: str | None = None
        self._threads = 0 if threads is None else threads
        try:
            self._container = av.open(path)
        except (av.error.FFmpegError, UnicodeDecodeError) as err:
            raise InputError(f"cannot open video {show_path(path)} ({err}); {reencode_hint(path)}") from None
        if not self._container.streams.video:
            self._container.close()
            raise InputError(f"{show_path(path)} has no video stream; pass a video file")
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"
        self._stream.thread_count = self._threads
        self._packets = self._container.demux(self._stream)
        self._pending: list[av.VideoFrame] = []
        self._frame: av.VideoFrame | None = None
        self._ended = False

    def isOpened(self) -> bool:
        """True until :meth:`release`."""
        return self._container is not None

    def grab(self) -> bool:
        """Decode the next frame; False when none is left."""
        while not self._pending:
            if self._ended:
                self._frame = None
                return False
            self._pending = self._decode_next_packet()
        self._frame = self._pending.pop(0)
        return True

    def _decode_next_packet(self) -> list[av.VideoFrame]:
        try:
            packet = next(self._packets)
            return list(packet.decode())  # the flush packet at the end gives the frames still held
        except StopIteration:
            self._ended = True
        except av.error.FFmpegError as err:
            # damaged data: the stream ends here, as OpenCV's read() fails and OpenFace's reading loop
            # (SequenceCapture::GetNextFrame, then an empty frame) stops at the first failed read
            log.info("%s: decoding stopped at damaged data (%s)", self.path, err)
            self.damaged = str(err)
            self._ended = True
        return []

    def time_s(self) -> float | None:
        """Presentation time in seconds of the frame last grabbed (None: unknown)."""
        return None if self._frame is None or self._frame.time is None else float(self._frame.time)

    def retrieve(self) -> tuple[bool, np.ndarray | None]:
        """``(True, BGR frame)`` for the frame last grabbed, ``(False, None)`` when there is none."""
        if self._frame is None:
            return False, None
        frame = self._frame
        matrix, rng = conversion_of(self.profile, frame)
        bgr = frame.reformat(format="bgr24", src_colorspace=matrix, src_color_range=rng,
                             interpolation=Interpolation.BICUBIC, threads=self._threads).to_ndarray()
        turn = clockwise_rotation(self.profile, float(frame.rotation) if frame.rotation else None)
        if turn:
            bgr = cv2.rotate(bgr, CV2_ROTATE[turn])
        return True, np.ascontiguousarray(bgr)

    def release(self) -> None:
        """Close the file (idempotent)."""
        if self._container is not None:
            self._container.close()
            self._container = None
