"""Writing outputs atomically, and GeoJSON helpers.

Every file is written to a temporary file in the destination directory and moved into
place with :func:`os.replace`, so an interrupted run (Ctrl-C, a crash, a full disk)
leaves either the old file or nothing, never half a file.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import IO, Any, Iterator, Sequence

import numpy as np

from .errors import OutputError

__all__ = ["check_output_path", "atomic_path", "atomic_dir_path", "atomic_writer", "write_json", "round_coords"]


def check_output_path(
    path: str | os.PathLike[str], *, overwrite: bool = False, inputs: Sequence[Any] = ()
) -> Path:
    """Check that ``path`` can be written; return it as a Path.

    Raises
    ------
    OutputError
        When the directory is missing or not writable, the file exists and ``overwrite``
        is false, the path is a directory, or it names one of the ``inputs``.
    """
    p = Path(os.fspath(path))
    parent = p.parent if str(p.parent) else Path(".")
    for src in inputs:
        if src is None or not isinstance(src, (str, os.PathLike)):
            continue
        try:
            same = p.exists() and Path(os.fspath(src)).exists() and os.path.samefile(src, p)
        except OSError:
            same = False
        if same:
            raise OutputError(f"output {p} is the same file as input {src}: choose another output path")
    if p.is_dir():
        raise OutputError(f"output {p} is a directory: give a file path")
    if not parent.is_dir():
        what = "is not a directory" if parent.exists() else "does not exist"
        raise OutputError(f"output directory {what}: {parent} (create it first)")
    if not _writable_dir(parent):
        raise OutputError(f"output directory is not writable: {parent}")
    if p.exists() and not overwrite:
        raise OutputError(f"output exists: {p} (use --overwrite to replace it)")
    return p


def _writable_dir(d: Path) -> bool:
    """Whether a file can be created in directory ``d``.

    ``os.access`` says yes to root everywhere and knows nothing of read-only mounts, so
    a directory whose mode grants no write permission at all is refused even to root
    (its owner marked it read-only), and creating a file is tried for real.
    """
    try:
        if not os.access(d, os.W_OK) or not d.stat().st_mode & 0o222:
            return False
        fd, probe = tempfile.mkstemp(dir=d, prefix=".queuemeasure-probe-", suffix=".part")
    except OSError:
        return False
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(probe)
    return True


def _file_mode() -> int:
    """The mode a newly created file gets under the current umask (mkstemp uses 0600)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextlib.contextmanager
def atomic_path(
    path: str | os.PathLike[str], *, overwrite: bool = False, suffix: str = ".part"
) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; move it onto ``path`` on success.

    For writers that want a file name (rasterio, matplotlib). On any exception (including
    KeyboardInterrupt) the temporary file is removed and ``path`` is left untouched; the
    final file gets the usual permissions under the umask.
    """
    p = check_output_path(path, overwrite=overwrite)
    try:
        fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=suffix)
        os.close(fd)
    except OSError as exc:
        raise OutputError(f"cannot write {p}: {exc.strerror or exc}") from None
    try:
        yield Path(tmp)
        if p.exists() and not overwrite:
            raise OutputError(f"output exists: {p} (use --overwrite to replace it)")
        os.chmod(tmp, _file_mode())
        os.replace(tmp, p)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and not isinstance(exc, OutputError):
            # a full disk, a vanished directory, ...: still one clear error
            raise OutputError(f"cannot write {p}: {exc.strerror or exc}") from exc
        raise


@contextlib.contextmanager
def atomic_dir_path(path: str | os.PathLike[str], *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a path named like ``path`` inside a new hidden directory next to it; move
    that file onto ``path`` on success, and remove the directory in every case.

    For writers that create files of their own beside the one asked for (GDAL's
    GeoPackage journal, FlatGeobuf's temporary index file): they stay in the private
    directory, so a failed or interrupted write leaves nothing next to ``path``, and
    ``path`` itself is replaced in one rename. See :func:`atomic_path`.
    """
    p = check_output_path(path, overwrite=overwrite)
    try:
        tmpdir = Path(tempfile.mkdtemp(dir=p.parent, prefix=f".{p.name}.", suffix=".part"))
    except OSError as exc:
        raise OutputError(f"cannot write {p}: {exc.strerror or exc}") from None
    tmp = tmpdir / p.name
    try:
        yield tmp
        if not tmp.is_file():
            raise OutputError(f"cannot write {p}: the writer produced no file")
        if p.exists() and not overwrite:
            raise OutputError(f"output exists: {p} (use --overwrite to replace it)")
        os.chmod(tmp, _file_mode())
        os.replace(tmp, p)
    except OSError as exc:
        if isinstance(exc, OutputError):
            raise
        raise OutputError(f"cannot write {p}: {exc.strerror or exc}") from exc
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


@contextlib.contextmanager
def atomic_writer(
    path: str | os.PathLike[str], mode: str = "w", *, overwrite: bool = False
) -> Iterator[IO[Any]]:
    """Open a temporary file next to ``path`` for writing; move it onto ``path`` on success.

    See :func:`atomic_path`; the file is flushed and fsynced before the rename.
    """
    with atomic_path(path, overwrite=overwrite) as tmp:
        with open(tmp, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())


def write_json(path: str | os.PathLike[str], obj: Any, *, overwrite: bool = False, indent: int | None = None) -> Path:
    """Write ``obj`` as JSON atomically; return the path."""
    text = json.dumps(obj, indent=indent, allow_nan=False)
    with atomic_writer(path, "w", overwrite=overwrite) as fh:
        fh.write(text)
        fh.write("\n")
    return Path(os.fspath(path))


def round_coords(coords: Any, precision: int | None) -> Any:
    """Coordinates as nested lists of floats, rounded to ``precision`` decimals if given."""
    arr = np.asarray(coords, dtype=float)
    if precision is not None:
        arr = np.round(arr, precision)
    return arr.tolist()
