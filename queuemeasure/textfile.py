"""Reading a user's text file (a road, a manifest) with one clear error."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import InputError

__all__ = ["read_text_file"]


def read_text_file(path: str | os.PathLike[str], what: str, error: type[InputError] = InputError) -> str:
    """Read a UTF-8 text file (a BOM is dropped).

    Parameters
    ----------
    path : path-like
    what : str
        What the file is, for the message ("road file", "manifest").
    error : type
        The :class:`InputError` subclass to raise.

    Raises
    ------
    InputError
        (as ``error``) when the file is missing, a directory, unreadable or not text.
    """
    p = Path(os.fspath(path))
    if not p.exists():
        raise error(f"{what} not found: {p}")
    if p.is_dir():
        raise error(f"{what} is a directory, not a file: {p}")
    try:
        return p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"cannot read {what} {p}: {exc}") from None
