"""Exceptions with one-line messages that name the file and the fix.

Every error the package raises on bad input derives from :class:`MtcnnLabError`, so the CLI can
print ``error: <message>`` without a traceback and callers can catch one type.
"""

__all__ = [
    "MtcnnLabError", "WeightsError", "LicenseNotAccepted", "InputError", "ParameterError", "BackendUnavailable",
    "ConversionError", "OutputExists", "StaleResults", "WorkerLost",
]


class MtcnnLabError(Exception):
    """Base class: a problem the user can fix; ``str(err)`` is a complete one-line message."""


class WeightsError(MtcnnLabError):
    """A weight file is missing, truncated, corrupt or has the wrong checksum."""


class LicenseNotAccepted(MtcnnLabError):
    """OpenFace's files would have to be downloaded, but the user has not accepted the license."""


class InputError(MtcnnLabError):
    """An image, video or array given to the detector cannot be used."""


class ParameterError(MtcnnLabError, ValueError):
    """A detector parameter (minimum face, thresholds, backend or weight name) is out of range."""


class BackendUnavailable(MtcnnLabError):
    """A runtime cannot be used here (package missing, no GPU, not macOS) or failed its self-check."""


class ConversionError(MtcnnLabError):
    """A model could not be converted (ONNX, Core ML) or written."""


class OutputExists(ConversionError, FileExistsError):
    """An output file exists and overwriting was not asked for."""


class StaleResults(ParameterError):
    """A per-frame results file to resume holds another input's frames, or frames computed with other settings."""


class WorkerLost(MtcnnLabError):
    """A detection worker process died (killed, e.g. by the out-of-memory killer); what was written so far stays."""
