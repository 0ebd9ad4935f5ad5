"""How a video was decoded, as every video result records it: the profile, the decoder's library
versions, what the stream declares (:class:`~mtcnn_lab.io.decode.probe.VideoInfo`), the colour
conversion and the rotation applied."""

from __future__ import annotations

import av
import cv2

from mtcnn_lab.io.decode.probe import VideoInfo, probe_video
from mtcnn_lab.io.decode.profiles import DecodeProfile, clockwise_rotation, get_profile
from mtcnn_lab.io.paths import PathLike

__all__ = ["decoder_versions", "decode_record", "needed_rotation", "applied_rotation", "opencv_rotation"]


def decoder_versions(profile: DecodeProfile) -> dict[str, str]:
    """The libraries that decode for ``profile`` and their versions."""
    if profile.reader == "opencv":
        return {"opencv": cv2.__version__}
    libs = av.library_versions
    return {"pyav": av.__version__, **{name: ".".join(map(str, libs[name])) for name in ("libavcodec", "libswscale")}}


def needed_rotation(info: VideoInfo) -> int:
    """Clockwise degrees that make the stored frames upright, by the display matrix (0 without one)."""
    return clockwise_rotation(get_profile("upright"), info.display_rotation)


def opencv_rotation(path: str) -> int:
    """Clockwise degrees the installed OpenCV turns ``path``'s frames (its ``CAP_PROP_ORIENTATION_META``
    when auto-rotation is on, as it is by default)."""
    capture = cv2.VideoCapture(path)
    try:
        if not capture.isOpened() or not capture.get(cv2.CAP_PROP_ORIENTATION_AUTO):
            return 0
        return int(round(capture.get(cv2.CAP_PROP_ORIENTATION_META))) % 360
    finally:
        capture.release()


def applied_rotation(profile: DecodeProfile, info: VideoInfo) -> int:
    """Clockwise degrees ``profile`` turns ``info``'s frames."""
    if profile.reader == "opencv":
        return opencv_rotation(info.path)
    return clockwise_rotation(profile, info.display_rotation)


def _conversion(profile: DecodeProfile, info: VideoInfo) -> str:
    if profile.reader == "opencv":
        return f"as OpenCV {cv2.__version__} converts"
    if profile.colour == "bt601":
        return "BT.601 matrix whatever the tags say, range of the pixel format (swscale, SWS_BICUBIC)"
    return f"the tagged matrix ({info.matrix}) and range ({info.range}) (swscale, SWS_BICUBIC)"


def decode_record(path: PathLike, decode: str | DecodeProfile | None = None, info: VideoInfo | None = None) -> dict:
    """How ``path`` is decoded with ``decode``: a JSON-ready dict with ``profile``, ``libraries``, the
    stream's declarations (codec, stored size, pixel format, bit depth, colour tags,
    ``display_rotation``), ``conversion``, ``rotation_applied`` (clockwise degrees) and ``upright``
    (whether the frames come out as the display matrix says they should look). The number of frames
    decoded is added by the caller that decodes them."""
    profile = get_profile(decode)
    info = probe_video(path) if info is None else info
    turned = applied_rotation(profile, info)
    return {"profile": profile.name, "libraries": decoder_versions(profile), **info.as_dict(),
            "conversion": _conversion(profile, info), "rotation_applied": turned,
            "upright": turned == needed_rotation(info)}
