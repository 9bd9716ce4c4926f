"""The output formats queuemeasure writes, chosen by file extension (or by name).

One table for the vector outputs (``measure --out``, ``batch --vector``), one for the
pictures (``measure --quicklook``, ``batch --plot``) and one for tables (``batch --out``),
used both by the command line's
checks, before any work starts, and by the writers. An extension that is in neither
table, or a format that cannot hold the outputs faithfully, is refused with one line
that lists what can be written.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from .errors import OutputFormatError

__all__ = ["Format", "VECTOR_FORMATS", "IMAGE_FORMATS", "TABLE_FORMATS", "vector_format",
           "image_format", "table_format", "road_format",
           "require_pyogrio", "savefig_kwargs"]


@dataclass(frozen=True)
class Format:
    """One output format.

    Attributes
    ----------
    key : str
        Short name accepted by ``--format`` (``"gpkg"``).
    name : str
        Human name (``"GeoPackage"``).
    extensions : tuple of str
        File extensions, lower case with the dot; the first is the usual one.
    driver : str
        What writes it: the OGR driver (vector) or matplotlib's ``format`` (pictures).
    needs : str or None
        The optional extra that provides the writer (``"vector"``: pyogrio), if any.
    """

    key: str
    name: str
    extensions: tuple[str, ...]
    driver: str
    needs: str | None = None


VECTOR_FORMATS: tuple[Format, ...] = (
    Format("geojson", "GeoJSON", (".geojson", ".json"), "GeoJSON"),
    Format("gpkg", "GeoPackage", (".gpkg",), "GPKG", needs="vector"),
    Format("fgb", "FlatGeobuf", (".fgb",), "FlatGeobuf", needs="vector"),
)

IMAGE_FORMATS: tuple[Format, ...] = (
    Format("png", "PNG", (".png",), "png"),
    Format("jpeg", "JPEG", (".jpg", ".jpeg"), "jpeg"),
    Format("pdf", "PDF", (".pdf",), "pdf"),
    Format("svg", "SVG", (".svg",), "svg"),
)

TABLE_FORMATS: tuple[Format, ...] = (
    Format("csv", "CSV", (".csv",), "csv"),
)

#: Vector formats refused on purpose, with the reason (keys: --format names and extensions).
_REFUSED_VECTOR = {
    ("shp", "shapefile", ".shp", ".shx", ".dbf"): (
        "Shapefile cannot hold these outputs faithfully (field names cut to 10 characters, "
        "text to 254, one geometry type per file): write a GeoPackage instead (.gpkg; "
        "QGIS opens it directly)"
    ),
}


def _listing(table: tuple[Format, ...]) -> str:
    return ", ".join(f"{f.name} ({'/'.join(f.extensions)})" for f in table)


def _extension(path: str | os.PathLike[str]) -> str:
    return os.path.splitext(os.fspath(path))[1].lower()


def _by_extension(path: str | os.PathLike[str], table: tuple[Format, ...]) -> Format | None:
    ext = _extension(path)
    return next((f for f in table if ext in f.extensions), None)


def _require(path: str | os.PathLike[str], table: tuple[Format, ...], refusal: str) -> Format:
    """The format of ``path``'s extension in ``table``, else OutputFormatError(refusal)."""
    fmt = _by_extension(path, table)
    if fmt is None:
        raise OutputFormatError(refusal)
    return fmt


def _unknown(path: str | os.PathLike[str], what: str) -> str:
    return (f"cannot tell the {what} of {os.fspath(path)} from its extension "
            f"{_extension(path) or '(none)'}")


def _refusal(token: str) -> str | None:
    for names, why in _REFUSED_VECTOR.items():
        if token in names:
            return why
    return None


def vector_format(path: str | os.PathLike[str], format: str | None = None, *,
                  check_writer: bool = True) -> Format:
    """The vector format to write ``path`` in: ``format`` if given, else its extension.

    Parameters
    ----------
    path : str or PathLike
        The output file.
    format : str, optional
        A key of :data:`VECTOR_FORMATS` (``geojson``, ``gpkg``, ``fgb``; any case). The
        extension may then be one that no format claims, but not another format's.
    check_writer : bool
        Also check that the format's optional writer (pyogrio) can be imported.

    Raises
    ------
    OutputFormatError
        For an unknown extension or format, a refused one (Shapefile), an extension that
        contradicts ``format``, or a missing pyogrio; the message is one line.
    """
    fmt = _vector_by_name(path, format) if format is not None else _vector_by_extension(path)
    if check_writer and fmt.needs == "vector":
        require_pyogrio(fmt)
    return fmt


def _vector_by_name(path: str | os.PathLike[str], format: str) -> Format:
    key = format.strip().lower().lstrip(".")
    why = _refusal(key)
    if why:
        raise OutputFormatError(why)
    fmt = next((f for f in VECTOR_FORMATS if key in (f.key, f.name.lower())), None)
    if fmt is None:
        raise OutputFormatError(
            f"unknown vector format {format!r}: choose {', '.join(f.key for f in VECTOR_FORMATS)}"
            f" ({_listing(VECTOR_FORMATS)})")
    other = _by_extension(path, VECTOR_FORMATS)
    if (other is not None and other is not fmt) or _refusal(_extension(path)):
        raise OutputFormatError(
            f"{os.fspath(path)} has the extension of another format than {fmt.name}: "
            f"use {fmt.extensions[0]} or leave out --format")
    return fmt


def _vector_by_extension(path: str | os.PathLike[str]) -> Format:
    why = _refusal(_extension(path))
    if why:
        raise OutputFormatError(why)
    return _require(path, VECTOR_FORMATS,
                    f"{_unknown(path, 'format')}: vector outputs are {_listing(VECTOR_FORMATS)}")


def require_pyogrio(fmt: Format) -> None:
    """Raise :class:`OutputFormatError` saying how to install pyogrio when it is missing."""
    try:
        import pyogrio  # noqa: F401
    except ImportError:
        raise OutputFormatError(
            f"{fmt.name} output needs pyogrio: pip install 'queuemeasure[vector]' "
            "(or write GeoJSON, which needs nothing more)") from None


def image_format(path: str | os.PathLike[str]) -> Format:
    """The picture format of ``path``, from its extension (PNG, JPEG, PDF or SVG).

    Raises
    ------
    OutputFormatError
        When the extension is not one of :data:`IMAGE_FORMATS` (one line listing them).
    """
    return _require(path, IMAGE_FORMATS,
                    f"{_unknown(path, 'picture format')}: pictures are {_listing(IMAGE_FORMATS)}")


def table_format(path: str | os.PathLike[str]) -> Format:
    """The table format of ``path`` (CSV: the results of ``batch``), from its extension.

    Raises
    ------
    OutputFormatError
        For any other extension (one line, pointing vector files to ``--vector``).
    """
    return _require(path, TABLE_FORMATS,
                    f"the results table {os.fspath(path)} is written as CSV: name it .csv (the "
                    f"queues as {', '.join(f.name for f in VECTOR_FORMATS)} go to --vector)")


def road_format(path: str | os.PathLike[str]) -> Format:
    """GeoJSON, the one format a traced road is written in (the one ``--road`` reads).

    Raises
    ------
    OutputFormatError
        For any other extension (one line).
    """
    return _require(path, VECTOR_FORMATS[:1],
                    f"the road {os.fspath(path)} is written as GeoJSON, the format --road reads: "
                    f"name it {' or '.join(VECTOR_FORMATS[0].extensions)}")


def savefig_kwargs(fmt: Format, software: str = "queuemeasure") -> dict[str, object]:
    """Keyword arguments for matplotlib's ``savefig`` writing a picture in ``fmt``.

    Names the writing software in the file's metadata where the format has a place for
    it (PNG, PDF, SVG); JPEG is written at quality 92 so that vehicles stay legible.
    """
    kwargs: dict[str, object] = {"format": fmt.driver}
    if fmt.key == "png":
        kwargs["metadata"] = {"Software": software}
    elif fmt.key in ("pdf", "svg"):
        kwargs["metadata"] = {"Creator": software}
    elif fmt.key == "jpeg":
        kwargs["pil_kwargs"] = {"quality": 92}
    return kwargs
