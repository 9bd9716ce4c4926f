"""Writing outputs atomically, and GeoJSON helpers.

Every file is written to a temporary file in the destination directory and moved into
place with :func:`os.replace`, so an interrupted run (Ctrl-C, a crash, a full disk)
leaves either the old file or nothing, never half a file.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import IO, Any, Iterator, Sequence

import numpy as np

from .errors import OutputError

__all__ = ["check_output_path", "atomic_writer", "write_json", "round_coords"]


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
            raise OutputError(f"output {p} is the same file as input {src}")
    if p.is_dir():
        raise OutputError(f"output {p} is a directory")
    if not parent.is_dir():
        raise OutputError(f"output directory does not exist: {parent}")
    if not os.access(parent, os.W_OK):
        raise OutputError(f"output directory is not writable: {parent}")
    if p.exists() and not overwrite:
        raise OutputError(f"output exists: {p} (use --overwrite to replace it)")
    return p


@contextlib.contextmanager
def atomic_writer(
    path: str | os.PathLike[str], mode: str = "w", *, overwrite: bool = False
) -> Iterator[IO[Any]]:
    """Open a temporary file next to ``path``; move it onto ``path`` on success.

    On any exception (including KeyboardInterrupt) the temporary file is removed and
    ``path`` is left untouched.
    """
    p = check_output_path(path, overwrite=overwrite)
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".part")
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        if p.exists() and not overwrite:
            raise OutputError(f"output exists: {p} (use --overwrite to replace it)")
        os.replace(tmp, p)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


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
