"""Choosing the ways of one road: by ref, name, id or tags, plus the roundabouts on it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from ..errors import OptionError, RoadError
from .model import OsmData, OsmWay, node_keys

__all__ = ["Selection", "select_ways", "normalise_ref", "parse_way_id", "parse_tag"]

# Cyrillic letters that look like Latin ones (Russian road refs are Cyrillic: А-161, Р-217)
_HOMOGLYPHS = str.maketrans("АВЕКМНОРСТУХ", "ABEKMHOPCTYX")
_REF_TAGS = ("ref", "int_ref", "nat_ref", "reg_ref")


@dataclass(frozen=True)
class Selection:
    """Which ways make the road.

    A way is selected when it matches every criterion given among ``ref``, ``name`` and
    ``tags``; ways listed in ``ids`` are added. Roundabouts (``junction=roundabout``)
    touching a selected way are added, since they rarely carry the road's ref. With no
    criterion at all, every highway way is selected.

    Attributes
    ----------
    ref : str, optional
        A road number, e.g. ``"А-161"``. Matched against each value of the ``ref``,
        ``int_ref``, ``nat_ref`` and ``reg_ref`` lists (``"A 161;E 117"``) and of route
        relations, ignoring case, spaces, hyphens and Cyrillic/Latin look-alike letters.
    name : str, optional
        A road name, matched (ignoring case and spacing) against ``name``, ``int_name``
        and ``name:*``.
    ids : sequence of int
        OSM way ids (``way/123`` on the command line).
    tags : mapping of str to str or None
        Tag filters: ``{"highway": "primary"}``; a value ``None`` or ``"*"`` means any
        value, ``"a|b"`` either value.
    """

    ref: str | None = None
    name: str | None = None
    ids: tuple[int, ...] = ()
    tags: tuple[tuple[str, str | None], ...] = field(default=())

    @classmethod
    def make(cls, ref: str | None = None, name: str | None = None, ids: Iterable[Any] = (),
             tags: Mapping[str, str | None] | Iterable[str] | None = None) -> "Selection":
        """Build a selection from user input (``"way/123"`` ids, ``"k=v"`` tag strings)."""
        if isinstance(tags, Mapping):
            tag_items = tuple((str(k), v) for k, v in tags.items())
        else:
            tag_items = tuple(parse_tag(t) for t in (tags or ()))
        if ref is not None and not normalise_ref(ref):
            raise OptionError(f"road ref {ref!r} is empty")
        return cls(ref, name, tuple(parse_way_id(i) for i in ids), tag_items)

    @property
    def empty(self) -> bool:
        """True when no criterion is given (every highway way is selected)."""
        return self.ref is None and self.name is None and not self.ids and not self.tags

    def describe(self) -> str:
        """The selection as the command-line options that give it."""
        parts = []
        if self.ref is not None:
            parts.append(f"ref {self.ref!r}")
        if self.name is not None:
            parts.append(f"name {self.name!r}")
        parts.extend(f"{k}={v or '*'}" for k, v in self.tags)
        parts.extend(f"way/{i}" for i in self.ids)
        return ", ".join(parts) or "every highway way"

    def as_dict(self) -> dict[str, Any]:
        """The selection as JSON-ready data (for the road's GeoJSON properties)."""
        return {"ref": self.ref, "name": self.name, "ids": [f"way/{i}" for i in self.ids],
                "tags": {k: v for k, v in self.tags}}


def normalise_ref(ref: str) -> str:
    """A road number reduced for matching: ``"А-161"`` (Cyrillic), ``"a 161"`` → ``"A161"``."""
    return re.sub(r"[\s\-‐‑–—_]", "", str(ref).upper().translate(_HOMOGLYPHS))


def _norm_name(name: str) -> str:
    return " ".join(str(name).split()).casefold()


def parse_way_id(value: Any) -> int:
    """``123``, ``"123"``, ``"way/123"``, ``"w123"`` → 123."""
    m = re.fullmatch(r"\s*(?:way/|w)?(\d+)\s*", str(value), re.I)
    if not m:
        raise OptionError(f"{value!r} is not a way id: give way/123")
    return int(m.group(1))


def parse_tag(text: str) -> tuple[str, str | None]:
    """``"highway=primary"`` → ``("highway", "primary")``; ``"bridge"`` → ``("bridge", None)``."""
    key, sep, value = str(text).partition("=")
    key, value = key.strip(), value.strip()
    if not key or (sep and not value):
        raise OptionError(f"{text!r} is not a tag filter: give KEY=VALUE (VALUE may be * or a|b)")
    return key, (value if sep and value != "*" else None)


def _ref_values(tags: Mapping[str, str]) -> set[str]:
    return {normalise_ref(v) for k in _REF_TAGS for v in str(tags.get(k, "")).split(";") if v.strip()}


def _names(tags: Mapping[str, str]) -> set[str]:
    return {_norm_name(v) for k, v in tags.items() if k in ("name", "int_name") or k.startswith("name:")}


def _tags_match(tags: Mapping[str, str], filters: Sequence[tuple[str, str | None]]) -> bool:
    for k, v in filters:
        if k not in tags or (v is not None and tags[k] not in v.split("|")):
            return False
    return True


def _criteria_match(data: OsmData, sel: Selection) -> set[int]:
    """Ids of the ways matching ``ref``/``name``/``tags`` (relation members count)."""
    ref = normalise_ref(sel.ref) if sel.ref is not None else None
    name = _norm_name(sel.name) if sel.name is not None else None

    def hit(tags: Mapping[str, str]) -> bool:
        return ((ref is None or ref in _ref_values(tags))
                and (name is None or name in _names(tags)))

    by_relation: set[int] = set()
    if ref is not None or name is not None:
        for r in data.relations:
            if hit(r.tags):
                by_relation.update(r.way_ids)
    ids = set()
    for w in data.ways:
        if _tags_match(w.tags, sel.tags) and (hit(w.tags) or w.id in by_relation):
            ids.add(w.id)
    return ids


def select_ways(data: OsmData, selection: Selection) -> list[OsmWay]:
    """The ways of ``data`` that ``selection`` chooses, with the roundabouts on them.

    Raises
    ------
    RoadError
        When nothing matches, or a listed way id is not in the data.
    """
    present = {w.id for w in data.ways}
    missing = [i for i in selection.ids if i not in present]
    if missing:
        raise RoadError(f"{', '.join(f'way/{i}' for i in missing)} not in {_src(data)} "
                        "(or not a highway way)")
    if selection.empty:
        chosen = present
    else:
        chosen = set(selection.ids)
        if selection.ref is not None or selection.name is not None or selection.tags:
            chosen |= _criteria_match(data, selection)
    if not chosen:
        raise RoadError(f"no way in {_src(data)} matches {selection.describe()}{_hint(data, selection)}")
    ways = [w for w in data.ways if w.id in chosen]
    return ways + _roundabouts_on(data, ways, chosen)


def _roundabouts_on(data: OsmData, ways: list[OsmWay], chosen: set[int]) -> list[OsmWay]:
    keys = np.concatenate([node_keys(w.lonlat) for w in ways])
    extra = []
    for w in data.ways:
        if w.id not in chosen and w.tags.get("junction") in ("roundabout", "circular"):
            if np.isin(node_keys(w.lonlat), keys).any():
                extra.append(w)
    return extra


def _src(data: OsmData) -> str:
    return data.source.rsplit("/", 1)[-1] if data.source else "the OSM data"


def _hint(data: OsmData, selection: Selection) -> str:
    """The refs present, when a ref matched nothing (a typo, or Latin for Cyrillic)."""
    if selection.ref is None:
        return ""
    refs: dict[str, int] = {}
    for w in data.ways:
        for v in str(w.tags.get("ref", "")).split(";"):
            if v.strip():
                refs[v.strip()] = refs.get(v.strip(), 0) + 1
    if not refs:
        return " (no way there has a ref)"
    common = sorted(refs, key=lambda r: -refs[r])[:8]
    return f" (refs there: {', '.join(common)})"
