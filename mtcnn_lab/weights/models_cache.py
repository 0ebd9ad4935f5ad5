"""The shared cache of OpenFace 2.2's MTCNN weights (``PNet.dat``, ``RNet.dat``, ``ONet.dat``).

OpenFace's weights are licensed for academic or non-profit non-commercial research only and may
not be redistributed, so mtcnn-lab never ships them: :func:`install_openface_models` downloads them
from OpenFace's GitHub tag ``OpenFace_2.2.0``, and only after the user accepts the license. The
cache is the one used by the PyPI packages pymtcnn, pyclnf and pyfaceau, so files installed by
any of them are found here and vice versa::

    <root>/2.2.0/originals/<path in OpenFace's repository>   the downloaded files, unchanged
    <root>/2.2.0/.lock                                       held while files are written
    <root>/2.2.0/OpenFace-license-NOTICE.txt                 where the license is

``<root>`` is ``$OPENFACE_MODELS_DIR`` when set, else ``OpenFaceModels`` in the per-user data
folder (see :func:`models_root`). Every other function here only reads the cache.
"""

from __future__ import annotations

import errno
import hashlib
import http.client
import os
import secrets
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from filelock import FileLock, Timeout
from tqdm import tqdm

from mtcnn_lab.errors import LicenseNotAccepted, WeightsError
from mtcnn_lab.weights.dat import NotARegularFile, check_regular_file

OPENFACE_VERSION = "2.2.0"
LICENSE_URL = "https://github.com/TadasBaltrusaitis/OpenFace/blob/master/OpenFace-license.txt"
DEFAULT_BASE_URL = "https://raw.githubusercontent.com/TadasBaltrusaitis/OpenFace/OpenFace_2.2.0"
ENV_MODELS_DIR = "OPENFACE_MODELS_DIR"
ENV_ACCEPT_LICENSE = "OPENFACE_MODELS_ACCEPT_LICENSE"
ENV_BASE_URL = "OPENFACE_MODELS_BASE_URL"
NOTICE_NAME = "OpenFace-license-NOTICE.txt"
INSTALL_COMMAND = "mtcnn-lab models --accept-license"

_ACCEPT_VALUES = frozenset({"1", "true", "yes"})
_TIMEOUT_S = 30.0  # socket timeout of one request
_BACKOFF_S = 1.0  # pause before the first retry; doubles for each further one
_LOCK_TIMEOUT_S = 15 * 60.0
_CHUNK = 1 << 16
_PERMANENT_HTTP = frozenset({400, 401, 403, 404, 410})  # retrying the same URL cannot help
_WRITE_ERRNOS = frozenset({errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC})


@dataclass(frozen=True)
class ModelFile:
    """One OpenFace file: its path in OpenFace's repository, its size and its SHA-256."""

    relpath: str
    size: int
    sha256: str

    @property
    def name(self) -> str:
        """The file name, e.g. ``PNet.dat``."""
        return self.relpath.rsplit("/", 1)[-1]


_MTCNN_DIR = "lib/local/LandmarkDetector/model/mtcnn_detector"

MANIFEST: dict[str, ModelFile] = {
    "pnet": ModelFile(
        f"{_MTCNN_DIR}/PNet.dat",
        35088,
        "22dfd0a96ec983e99b21c0e214d89d55ea9a471eedd53e5a48203f22bcb4c489",
    ),
    "rnet": ModelFile(
        f"{_MTCNN_DIR}/RNet.dat",
        454912,
        "95e9c4203ca0a08c84520fa5fd658834213ed2453a7359f4d9514a06762f91e9",
    ),
    "onet": ModelFile(
        f"{_MTCNN_DIR}/ONet.dat",
        1729592,
        "4c853ae5b461abe4d41f1cd77625895cd71452956c63c622fd75a3b820fb1d31",
    ),
}
"""Network name -> the OpenFace file that holds its weights (OpenFace 2.2.0)."""

_NOTICE_TEXT = f"""\
The files under originals/ are part of OpenFace {OPENFACE_VERSION} by Tadas Baltrusaitis et al.
(https://github.com/TadasBaltrusaitis/OpenFace), downloaded unchanged from its GitHub tag
OpenFace_2.2.0 after the user accepted OpenFace's license.

That license allows academic or non-profit non-commercial research use only; commercial use
needs a separate license from Carnegie Mellon University. Do not redistribute these files.
Full license text: {LICENSE_URL}
"""

# (path, inode, size, mtime_ns) -> hex SHA-256, so repeated checks of an unchanged file are cheap.
_DIGESTS: dict[tuple[str, int, int, int], str] = {}


# --------------------------------------------------------------------------------------------
# locations


def _user_data_dir() -> Path:
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support"
    if sys.platform == "win32":
        local = os.environ.get("LOCALAPPDATA", "")
        return Path(local) if local else Path.home() / "AppData" / "Local"
    xdg = os.environ.get("XDG_DATA_HOME", "")
    return Path(xdg) if os.path.isabs(xdg) else Path.home() / ".local" / "share"


def models_root() -> Path:
    """The cache root: ``$OPENFACE_MODELS_DIR`` if set, else ``<user data dir>/OpenFaceModels``.

    The user data dir is ``$XDG_DATA_HOME`` (default ``~/.local/share``) on Linux,
    ``~/Library/Application Support`` on macOS and ``%LOCALAPPDATA%`` on Windows. The
    ``2.2.0`` version folder lies below the root, as in pymtcnn.
    """
    override = os.environ.get(ENV_MODELS_DIR, "").strip()
    if override:
        return Path(override).expanduser()
    return _user_data_dir() / "OpenFaceModels"


def _version_dir(root: Path | None) -> Path:
    base = models_root() if root is None else Path(root).expanduser()
    return base / OPENFACE_VERSION


def _entry(net: str) -> ModelFile:
    entry = MANIFEST.get(str(net).lower())
    if entry is None:
        raise WeightsError(f"unknown network {net!r}; use 'pnet', 'rnet' or 'onet'")
    return entry


def dat_path(net: str, root: Path | None = None) -> Path:
    """Where ``net``'s ``.dat`` file lies in the cache (``root`` defaults to :func:`models_root`).

    ``net`` is ``pnet``, ``rnet`` or ``onet`` in any case; the file may not exist.
    """
    entry = _entry(net)
    return _version_dir(root).joinpath("originals", *entry.relpath.split("/"))


# --------------------------------------------------------------------------------------------
# verification


def _hash_stream(handle: BinaryIO) -> str:
    digest = hashlib.sha256()
    for chunk in iter(lambda: handle.read(_CHUNK), b""):
        digest.update(chunk)
    return digest.hexdigest()


def _measure(path: Path, entry: ModelFile) -> tuple[int, str | None] | None:
    """None if ``path`` is missing, else (size, SHA-256); the hash is skipped on a size mismatch.

    Other ``OSError`` (unreadable, :class:`NotARegularFile`) propagate.
    """
    try:
        check_regular_file(path)
        handle = open(path, "rb")
    except FileNotFoundError:
        return None
    with handle:
        info = os.fstat(handle.fileno())
        if info.st_size != entry.size:
            return info.st_size, None
        key = (os.fspath(path), info.st_ino, info.st_size, info.st_mtime_ns)
        if key not in _DIGESTS:
            _DIGESTS[key] = _hash_stream(handle)
        return info.st_size, _DIGESTS[key]


def _verify_file(path: Path, entry: ModelFile) -> None:
    """Check ``path``'s size, then its SHA-256, against ``entry``; raise WeightsError if wrong.

    The hash of an unchanged file (same path, inode, size and mtime) is computed once per process.
    """
    fix = f"delete it and run `{INSTALL_COMMAND}`"
    try:
        measured = _measure(path, entry)
    except NotARegularFile as err:
        raise WeightsError(f"{path} is {err.strerror}: {fix}") from None
    except OSError as err:
        raise WeightsError(f"{path} cannot be read ({err.strerror}): {fix}") from None
    if measured is None:
        raise WeightsError(
            f"{path} missing: run `{INSTALL_COMMAND}` or set {ENV_MODELS_DIR} to a folder that "
            f"holds OpenFace {OPENFACE_VERSION}'s models"
        )
    size, digest = measured
    if digest is None:
        raise WeightsError(
            f"{path} has {size} bytes, expected {entry.size} (truncated or wrong file): {fix}"
        )
    if digest != entry.sha256:
        raise WeightsError(
            f"{path} has SHA-256 {digest}, expected {entry.sha256} "
            f"(corrupt or truncated download): {fix}"
        )


def installed_dat_paths(root: Path | None = None) -> dict[str, Path] | None:
    """``{"pnet": path, "rnet": path, "onet": path}`` if all three files are valid, else None.

    Never downloads.
    """
    paths = {}
    for net, entry in MANIFEST.items():
        path = dat_path(net, root)
        try:
            _verify_file(path, entry)
        except WeightsError:
            return None
        paths[net] = path
    return paths


def require_dat_path(net: str, root: Path | None = None) -> Path:
    """The verified path of ``net``'s ``.dat`` file; WeightsError (naming file and fix) if not."""
    path = dat_path(net, root)
    _verify_file(path, _entry(net))
    return path


def cache_status(root: Path | None = None) -> list[dict]:
    """Rows ``{net, path, present, size_ok, sha256_ok}``, one per net (never downloads)."""
    rows = []
    for net, entry in MANIFEST.items():
        path = dat_path(net, root)
        try:
            measured = _measure(path, entry)
        except OSError:
            measured = None
        size_ok = measured is not None and measured[1] is not None
        rows.append({
            "net": net,
            "path": path,
            "present": path.is_file(),
            "size_ok": size_ok,
            "sha256_ok": size_ok and measured[1] == entry.sha256,
        })
    return rows


# --------------------------------------------------------------------------------------------
# consent and download


def license_accepted(accept_license: bool = False) -> bool:
    """True if ``accept_license`` is given or ``OPENFACE_MODELS_ACCEPT_LICENSE`` is 1/true/yes."""
    value = os.environ.get(ENV_ACCEPT_LICENSE, "").strip().lower()
    return bool(accept_license) or value in _ACCEPT_VALUES


def _not_writable(folder: Path, err: OSError) -> str:
    return (
        f"cannot write the OpenFace model cache {folder} ({err.strerror or err}): "
        f"set {ENV_MODELS_DIR} to a writable folder or free some disk space"
    )


class _BadDownload(Exception):
    """The server's bytes do not match the manifest (worth another try)."""


def _fetch_verified(
    request: urllib.request.Request, dest: Path, entry: ModelFile, bar: tqdm
) -> None:
    """Download to a temp file beside ``dest``, verify it, then rename it to ``dest``. The file is created
    with mode 0666 less the umask, as ``open`` creates files, so that the users of a shared cache can read it."""
    tmp = dest.with_name(f".{dest.name}.{secrets.token_hex(8)}.part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        digest = hashlib.sha256()
        received = 0
        with (
            os.fdopen(fd, "wb") as out,
            urllib.request.urlopen(request, timeout=_TIMEOUT_S) as resp,
        ):
            while chunk := resp.read(_CHUNK):
                received += len(chunk)
                if received > entry.size:
                    raise _BadDownload(f"more than the expected {entry.size} bytes")
                digest.update(chunk)
                out.write(chunk)
                bar.update(len(chunk))
            out.flush()
            os.fsync(out.fileno())
        if received != entry.size:
            raise _BadDownload(f"{received} bytes, expected {entry.size}")
        if digest.hexdigest() != entry.sha256:
            raise _BadDownload(f"SHA-256 {digest.hexdigest()}, expected {entry.sha256}")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def _download(url: str, dest: Path, entry: ModelFile, retries: int, progress: bool) -> None:
    """Fetch one file with up to ``retries`` retries and exponential backoff."""
    try:
        request = urllib.request.Request(url, headers={"User-Agent": "mtcnn-lab (OpenFace models)"})
    except ValueError as err:
        raise WeightsError(f"cannot download {url!r} ({err}): check base_url or {ENV_BASE_URL}") from None
    problem = ""
    attempts = 0
    with tqdm(total=entry.size, desc=entry.name, unit="B", unit_scale=True,
              disable=not progress) as bar:
        for attempt in range(retries + 1):
            if attempt:
                time.sleep(_BACKOFF_S * 2 ** (attempt - 1))
                bar.reset()
            attempts += 1
            try:
                _fetch_verified(request, dest, entry, bar)
                return
            except urllib.error.HTTPError as err:
                problem = f"HTTP {err.code} {err.reason}"
                if err.code in _PERMANENT_HTTP:
                    break
            except _BadDownload as err:
                problem = f"server sent {err}"
            except urllib.error.URLError as err:  # no connection, DNS, TLS: what the server side said
                problem = str(err.reason)
            except OSError as err:
                if err.errno in _WRITE_ERRNOS:
                    raise WeightsError(_not_writable(dest.parent, err)) from None
                problem = str(err)
            except http.client.HTTPException as err:
                problem = f"{type(err).__name__}: {err}"
    raise WeightsError(
        f"download of {url} failed after {attempts} attempt(s) ({problem}); nothing was saved "
        f"to {dest}: check the network (or set {ENV_BASE_URL} to a mirror) and run "
        f"`{INSTALL_COMMAND}` again"
    )


def _write_notice(version_dir: Path) -> None:
    notice = version_dir / NOTICE_NAME
    if not notice.is_file() or notice.read_text(encoding="utf-8") != _NOTICE_TEXT:
        notice.write_text(_NOTICE_TEXT, encoding="utf-8")


def _consent_message(version_dir: Path) -> str:
    names = ", ".join(entry.name for entry in MANIFEST.values())
    megabytes = sum(entry.size for entry in MANIFEST.values()) / 1e6
    return (
        f"OpenFace's MTCNN weights ({names}; {megabytes:.1f} MB) are not installed in "
        f"{version_dir}, and mtcnn-lab does not bundle them: Carnegie Mellon University licenses "
        f"them for academic or non-profit non-commercial research only ({LICENSE_URL}). If your "
        f"use qualifies, accept that license to download them: run `{INSTALL_COMMAND}` "
        f"(accept_license=True in Python) or set {ENV_ACCEPT_LICENSE}=1"
    )


def install_openface_models(
    accept_license: bool = False,
    root: Path | None = None,
    base_url: str | None = None,
    retries: int = 3,
    progress: bool = True,
) -> dict[str, Path]:
    """Make sure the three ``.dat`` files are in the cache and return their verified paths.

    Returns at once if they are already valid. Otherwise downloads the missing or invalid files
    from ``base_url`` (default ``$OPENFACE_MODELS_BASE_URL``, else OpenFace's GitHub tag), but
    only with consent (see :func:`license_accepted`), under a file lock shared with pymtcnn;
    each file is verified before it is atomically renamed into place.

    Raises LicenseNotAccepted without consent (nothing is written) and WeightsError when a file
    cannot be downloaded and verified within ``retries`` retries or the cache is not writable.
    """
    if retries < 0:
        raise ValueError(f"retries must be >= 0, got {retries}")
    installed = installed_dat_paths(root)
    if installed is not None:
        return installed
    version_dir = _version_dir(root)
    if not license_accepted(accept_license):
        raise LicenseNotAccepted(_consent_message(version_dir))
    base = (base_url or os.environ.get(ENV_BASE_URL, "").strip() or DEFAULT_BASE_URL).rstrip("/")
    try:
        version_dir.mkdir(parents=True, exist_ok=True)
        with FileLock(version_dir / ".lock", timeout=_LOCK_TIMEOUT_S):
            paths = {}
            for net, entry in MANIFEST.items():
                dest = dat_path(net, root)
                paths[net] = dest
                try:
                    _verify_file(dest, entry)  # another process may have finished it meanwhile
                except WeightsError:
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    _download(f"{base}/{entry.relpath}", dest, entry, retries, progress)
            _write_notice(version_dir)
    except Timeout:
        raise WeightsError(
            f"another process has held {version_dir / '.lock'} for over {_LOCK_TIMEOUT_S:.0f} s: "
            "wait for that download to finish and try again"
        ) from None
    except OSError as err:
        raise WeightsError(_not_writable(version_dir, err)) from None
    return paths
