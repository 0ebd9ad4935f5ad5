"""Writing output files safely: atomically (never half-written) and never overwriting silently."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path

from mtcnn_lab.errors import OutputExists, ParameterError


def _default_mode(directory: bool = False) -> int:
    """The permission bits a new file (or folder) gets under the current umask."""
    umask = os.umask(0)
    os.umask(umask)
    return (0o777 if directory else 0o666) & ~umask


def normalise_permissions(root: Path) -> None:
    """Give ``root`` and everything below it the umask's default mode (temp files are 0600)."""
    for path in [root, *root.rglob("*")]:
        with contextlib.suppress(OSError):
            path.chmod(_default_mode(path.is_dir()))


def refuse_existing(paths: Iterable[Path]) -> None:
    """:class:`~mtcnn_lab.errors.OutputExists` naming the first of ``paths`` that exists (a file, folder or
    link), and how many more do; nothing when none does."""
    existing = [str(p) for p in paths if p.exists() or p.is_symlink()]
    if existing:
        raise OutputExists(f"{existing[0]} already exists; pass overwrite=True (--overwrite) to replace it"
                           + (f" and {len(existing) - 1} more" if len(existing) > 1 else ""))


def writable_folder(folder: str | Path, fix: str, target: str | Path | None = None, create: bool = True) -> Path:
    """``folder``, created with its parents if missing (``create``; else left as it is), after checking that this
    process can write files there, or in its nearest existing parent when it is not created (a probe file is
    made and removed); else ParameterError in one line naming ``target`` (the file to be written there; default
    the folder) and ending with ``fix`` (e.g. "choose another --out folder")."""
    folder = Path(folder)
    subject = f"in {folder}" if target is None else str(target)
    existing = next((p for p in (folder.absolute(), *folder.absolute().parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise ParameterError(f"cannot write {subject}: {existing} is a file, not a folder; {fix}")
    try:
        if create:
            folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder if create else existing):
            pass
    except OSError as err:
        raise ParameterError(f"cannot write {subject} ({err.strerror or err}); {fix}") from None
    return folder


def write_atomic(path: str | Path, data: bytes, overwrite: bool = False) -> Path:
    """Write ``data`` to ``path`` through a temporary file beside it, moved into place in one step.

    Without ``overwrite`` an existing ``path`` raises :class:`~mtcnn_lab.errors.OutputExists`, also
    when another process created it meanwhile (the final move is then a hard link, which cannot
    replace a file). ``OSError`` propagates for unwritable folders.
    """
    path = Path(path)
    if not overwrite and path.exists():
        raise OutputExists(f"{path}: already exists; pass --overwrite (overwrite=True) to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=_PART, dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.chmod(_default_mode())
        if overwrite:
            os.replace(tmp, path)
            return path
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise OutputExists(f"{path}: already exists; pass --overwrite (overwrite=True) to replace it") from None
        except OSError:  # a file system without hard links
            if path.exists():
                raise OutputExists(f"{path}: already exists; pass --overwrite (overwrite=True) to replace it") from None
            os.replace(tmp, path)
        return path
    finally:
        tmp.unlink(missing_ok=True)


_PART = ".part"
"""The suffix of :func:`write_atomic`'s temporary files, ``.<name>.<8 random characters>.part`` beside the file."""


def atomic_leftovers(path: str | Path) -> list[Path]:
    """The temporary files :func:`write_atomic` of ``path`` leaves when its process is killed mid-write (tempfile's
    8 random characters between ``.<name>.`` and ``.part``), sorted; others' files of similar names are not listed."""
    path = Path(path)
    prefix = f".{path.name}."
    return sorted(p for p in path.parent.glob(glob.escape(prefix) + "*" + _PART)
                  if re.fullmatch(r"[a-z0-9_]{8}", p.name[len(prefix):-len(_PART)]))


def write_json(path: str | Path, data: object, overwrite: bool = False) -> Path:
    """:func:`write_atomic` of ``data`` as indented JSON with a final newline."""
    return write_atomic(path, (json.dumps(data, indent=1) + "\n").encode(), overwrite)
