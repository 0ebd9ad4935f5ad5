"""What a video stream declares: codec, stored size, frame rate, pixel format, bit depth, colour tags and
display-matrix rotation, read with PyAV (libavformat/libavcodec) from the container and the first frame."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from fractions import Fraction

import av

from mtcnn_lab.errors import InputError
from mtcnn_lab.io.paths import PathLike, check_file, path_text, reencode_hint, show_path

__all__ = ["VideoInfo", "probe_video", "MATRIX_NAMES", "PRIMARIES_NAMES", "TRANSFER_NAMES", "RANGE_NAMES"]

log = logging.getLogger(__name__)

# FFmpeg's names (av_color_space_name, av_color_primaries_name, av_color_transfer_name, av_color_range_name)
# of the ISO/IEC 23091-4 code points; codes not listed are shown as numbers.
MATRIX_NAMES = {0: "gbr", 1: "bt709", 2: "unknown", 4: "fcc", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m",
                8: "ycgco", 9: "bt2020nc", 10: "bt2020c", 11: "smpte2085", 14: "ictcp"}
PRIMARIES_NAMES = {1: "bt709", 2: "unknown", 4: "bt470m", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m",
                   8: "film", 9: "bt2020", 10: "smpte428", 11: "smpte431", 12: "smpte432", 22: "ebu3213"}
TRANSFER_NAMES = {1: "bt709", 2: "unknown", 4: "gamma22", 5: "gamma28", 6: "smpte170m", 7: "smpte240m",
                  8: "linear", 13: "iec61966-2-1", 14: "bt2020-10", 15: "bt2020-12", 16: "smpte2084",
                  18: "arib-std-b67"}
RANGE_NAMES = {0: "unknown", 1: "tv", 2: "pc"}


def _name(table: dict[int, str], code: int) -> str:
    return table.get(int(code), str(int(code)))


@dataclass(frozen=True)
class VideoInfo:
    """A video stream as its container and first frame declare it.

    ``width``/``height``: the stored frame size in pixels (before any rotation); ``fps``: the average
    frame rate (None when unknown); ``header_frames``: the container's frame count (0 when it has none;
    it can be wrong: only decoding counts); ``bit_depth``: bits per luma sample; ``matrix``, ``primaries``,
    ``transfer``, ``range``: FFmpeg's names of the colour tags (``unknown`` when untagged);
    ``display_rotation``: FFmpeg's ``av_display_rotation_get`` of the display matrix in degrees
    counter-clockwise (a phone's portrait clip: -90), None without a matrix.
    """

    path: str
    container: str
    codec: str
    width: int
    height: int
    fps: float | None
    header_frames: int
    duration_s: float | None
    pixel_format: str
    bit_depth: int
    matrix: str
    primaries: str
    transfer: str
    range: str
    display_rotation: float | None

    def as_dict(self) -> dict:
        """The fields as a JSON-ready dict."""
        return asdict(self)


def _open_error(path: str, err: Exception) -> InputError:
    return InputError(f"cannot open video {show_path(path)} ({err}); {reencode_hint(path)}")


def probe_video(path: PathLike) -> VideoInfo:
    """Read ``path``'s first video stream's declarations (decoding only up to its first frame).

    Raises InputError when the file is missing, is not a video, has no video stream or no frame decodes.
    """
    p = path_text(path)
    check_file(p)
    try:
        container = av.open(p)
    except (av.error.FFmpegError, UnicodeDecodeError) as err:
        raise _open_error(p, err) from None
    with container:
        if not container.streams.video:
            raise InputError(f"{show_path(p)} has no video stream; pass a video file")
        stream = container.streams.video[0]
        codec = stream.codec_context
        first = _first_frame(container, stream, p)
        rate = stream.average_rate or stream.guessed_rate
        duration = None if stream.duration is None else float(stream.duration * stream.time_base)
        if duration is None and container.duration is not None:
            duration = container.duration / av.time_base
        rotation = float(first.rotation) if first.rotation else None
        return VideoInfo(
            path=p, container=container.format.name, codec=codec.name, width=first.width, height=first.height,
            fps=None if not rate else float(Fraction(rate)), header_frames=int(stream.frames or 0),
            duration_s=duration, pixel_format=first.format.name,
            bit_depth=max(c.bits for c in first.format.components),
            matrix=_name(MATRIX_NAMES, first.colorspace), primaries=_name(PRIMARIES_NAMES, first.color_primaries),
            transfer=_name(TRANSFER_NAMES, first.color_trc), range=_name(RANGE_NAMES, first.color_range),
            display_rotation=rotation,
        )


def _first_frame(container, stream, path: str):
    """The first frame that decodes (packets that fail to decode are skipped, as OpenCV does)."""
    try:
        for packet in container.demux(stream):
            try:
                for frame in packet.decode():
                    return frame
            except av.error.InvalidDataError as err:
                log.info("%s: a packet failed to decode (%s); trying the next", path, err)
    except av.error.FFmpegError as err:
        raise _open_error(path, err) from None
    raise InputError(f"video {show_path(path)} decodes 0 frames; {reencode_hint(path)}")
