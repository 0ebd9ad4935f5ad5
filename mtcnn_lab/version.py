"""The installed package's version (``0+unknown`` when run from a source tree that is not installed)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("mtcnn-lab")
except PackageNotFoundError:
    __version__ = "0+unknown"
