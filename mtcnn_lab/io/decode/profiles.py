"""Decode profiles: each reproduces the frames one decoder returns, so that a video gives the pixels a
user's OpenFace build saw (docs/video_decoding.md).

C++ OpenFace reads videos with ``cv::VideoCapture`` (``SequenceCapture::OpenVideoFile``), and what that
returns depends on the OpenCV and FFmpeg it was built with: the YUV->BGR matrix (OpenCV 4.x always
uses BT.601, whatever the stream's tag) and the rotation of clips with a display matrix (phones store
portrait video as landscape frames plus a -90 degree matrix). A profile names that behaviour after the
first OpenCV release that has it; every profile but ``opencv-python`` decodes with libavcodec through
PyAV and converts with swscale, as OpenCV's FFmpeg backend does.
"""

from __future__ import annotations

from dataclasses import dataclass

from mtcnn_lab.checks import one_of
from mtcnn_lab.errors import ParameterError

__all__ = ["DecodeProfile", "PROFILES", "PROFILE_NAMES", "DEFAULT_DECODE", "get_profile", "clockwise_rotation"]


@dataclass(frozen=True)
class DecodeProfile:
    """How one decoder turns a video stream into BGR uint8 frames.

    * ``reader``: ``"pyav"`` (libavcodec + swscale) or ``"opencv"`` (the installed ``cv2.VideoCapture``);
    * ``colour``: ``"bt601"`` (BT.601 matrix whatever the tags say; the range from the pixel format or
      the range tag, as swscale takes it) or ``"tags"`` (the matrix and range the stream declares);
    * ``rotation``: what is done with the display matrix: ``"none"`` (frames as stored), ``"display"``
      (turned as the matrix says: upright) or ``"reversed"`` (turned by the same angle the other way:
      OpenCV 4.6 on FFmpeg 5, so a -90 degree portrait clip comes out upside down);
    * ``summary``: one line for ``--help`` and the docs.
    """

    name: str
    reader: str
    colour: str
    rotation: str
    summary: str


PROFILES: dict[str, DecodeProfile] = {
    p.name: p
    for p in (
        DecodeProfile("opencv-4.6", "pyav", "bt601", "reversed",
                      "OpenCV 4.6.0, with any FFmpeg (Debian 12; the C++ reference): BT.601 colours, display "
                      "matrix applied the wrong way round (-90 degree portrait clips upside down)"),
        DecodeProfile("opencv-4.0", "pyav", "bt601", "none",
                      "OpenCV 4.0-4.4 (OpenFace's Windows release bundles 4.1), 4.5 built on FFmpeg 5 or later, "
                      "4.11.0: BT.601 colours, frames as stored (portrait phone clips lie on their side)"),
        DecodeProfile("opencv-4.5", "pyav", "bt601", "display",
                      "OpenCV 4.5 on FFmpeg 4 (Ubuntu 22.04's 4.5.4), 4.7-4.10, 4.12: BT.601 colours, display "
                      "matrix applied the right way (upright)"),
        DecodeProfile("opencv-4.13", "pyav", "tags", "display",
                      "OpenCV 4.13 and later built on FFmpeg 8 (opencv-python 4.13, 5.0): colour matrix and "
                      "range from the stream's tags, upright"),
        DecodeProfile("opencv-python", "opencv", "opencv", "opencv",
                      "whatever the installed opencv-python's cv2.VideoCapture returns"),
        DecodeProfile("upright", "pyav", "tags", "display",
                      "the picture as its metadata says it should look (colour tags honoured, display matrix "
                      "applied): for new studies; today the conversion of opencv-4.13"),
    )
}  # fmt: skip
"""The profiles by name, the default first."""

PROFILE_NAMES: tuple[str, ...] = tuple(PROFILES)

DEFAULT_DECODE = "opencv-4.6"
"""The default profile: the decoder of the C++ OpenFace run that made the reference (``docs/video_decoding.md``)."""


def get_profile(decode: str | DecodeProfile | None) -> DecodeProfile:
    """The profile named ``decode`` (None: :data:`DEFAULT_DECODE`); ParameterError naming the choices."""
    if isinstance(decode, DecodeProfile):
        return decode
    if decode is None:
        return PROFILES[DEFAULT_DECODE]
    return PROFILES[one_of(decode, PROFILE_NAMES, "decode profile",
                           " (`mtcnn-lab probe VIDEO` shows how they differ on a file)")]


def clockwise_rotation(profile: DecodeProfile, display_rotation: float | None) -> int:
    """Degrees (0, 90, 180, 270) by which ``profile`` turns each frame clockwise.

    ``display_rotation`` is FFmpeg's ``av_display_rotation_get`` of the stream's display matrix (degrees
    counter-clockwise; -90 on a phone's portrait clip, which needs a 90 degree clockwise turn), or None
    without a matrix. Angles that are not a multiple of 90 are not turned, as in OpenCV.
    """
    if display_rotation is None or profile.rotation == "none":
        return 0
    angle = round(display_rotation)
    if angle % 90:
        return 0
    if profile.rotation == "display":
        return (-angle) % 360
    if profile.rotation == "reversed":
        return angle % 360
    raise ParameterError(f"profile {profile.name} reads through OpenCV, which applies its own rotation")
