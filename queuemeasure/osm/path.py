"""The road as a path over the selected ways' graph, from the head upstream.

The queue stands on the carriageway that drives toward the checkpoint, so the path is
searched from the head *against* the direction of traffic: a one-way way is walked only
from its end toward its start (``oneway=-1``: the other way round); only when that finds
no path may it run against one-way tags, at a cost, and it says where. Ways meet where they
share an OSM node; ends of separate pieces closer than a few tens of metres are bridged
(and reported). The path is the shortest one from the head to ``toward`` (or to the end
of the selected ways), measured in a local metric frame centred on the head, so spurs,
branches and the other carriageway are left out.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from pyproj import CRS
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from .. import geo
from ..errors import HeadError, RoadError
from ..road import MAX_HEAD_DISTANCE_M, MAX_JOIN_GAP_M
from .model import OsmWay, node_keys

__all__ = ["PathResult", "shortest_path", "traffic_directions", "MAX_GAP_M", "ATTACH_SLACK_M"]

#: Ends of separate pieces of the selection closer than this (metres) are bridged: the
#: same limit as for the parts of a GeoJSON road.
MAX_GAP_M = MAX_JOIN_GAP_M
#: Ways this much farther from a point than the nearest way are also tried there (the
#: other carriageway of a dual carriageway may be the farther one).
ATTACH_SLACK_M = 40.0
#: Reaching the road from a point costs this many times the distance: the path starts on
#: the way at the head rather than jumping to a nearby one, unless only that one leads.
ATTACH_PENALTY = 3.0
#: When no path follows the one-way tags, driving against them costs this many times the
#: distance: the path keeps to the right carriageway wherever the selection has it.
WRONG_WAY_PENALTY = 10.0
#: A point farther than this from every selected way is refused (as a head too far from a
#: GeoJSON road).
MAX_ATTACH_M = MAX_HEAD_DISTANCE_M
#: A second side of the head longer than this is mentioned when no ``toward`` is given.
OTHER_SIDE_NOTE_M = 50.0

_ONEWAY_YES = {"yes", "true", "1"}
_ONEWAY_NO = {"no", "false", "0"}


def traffic_directions(tags: dict[str, str]) -> tuple[bool, bool]:
    """Whether traffic may drive along a way's own order (first) and against it (second).

    ``oneway=yes`` forward only, ``oneway=-1`` backward only, ``oneway=no`` (and
    ``reversible``/``alternating``) both ways; without ``oneway``, roundabouts and
    motorways are one-way (the OSM defaults), other ways two-way.
    """
    ow = str(tags.get("oneway", "")).strip().lower()
    if ow in _ONEWAY_YES:
        return True, False
    if ow in ("-1", "reverse"):
        return False, True
    if ow in _ONEWAY_NO or ow in ("reversible", "alternating"):
        return True, True
    if tags.get("junction") in ("roundabout", "circular") or tags.get("highway") == "motorway":
        return True, False
    return True, True


@dataclass
class PathResult:
    """The chosen path: WGS84 vertices from the head, the ways it runs on, and notes."""

    lonlat: np.ndarray
    way_ids: list[int]
    notes: list[str] = field(default_factory=list)
    gaps_m: list[float] = field(default_factory=list)


@dataclass
class _Graph:
    lonlat: np.ndarray        # (K, 2) unique nodes
    xy: np.ndarray            # (K, 2) in the local frame
    a: np.ndarray             # edge start node
    b: np.ndarray             # edge end node
    cost: np.ndarray          # planar metres
    way: np.ndarray           # index into ways; -1 for a bridged gap
    fwd: np.ndarray           # traffic may drive a -> b
    bwd: np.ndarray           # traffic may drive b -> a
    comp: np.ndarray          # component of each node (after bridging)
    ways: list[OsmWay]


def _build_graph(ways: Sequence[OsmWay], local: CRS) -> _Graph:
    keys = [node_keys(w.lonlat) for w in ways]
    allkeys = np.concatenate(keys)
    uniq, first, inv = np.unique(allkeys, return_index=True, return_inverse=True)
    lonlat = np.concatenate([w.lonlat for w in ways])[first]
    x, y = geo.transformer(geo.WGS84, local).transform(lonlat[:, 0], lonlat[:, 1])
    xy = np.column_stack([x, y])
    a_l, b_l, w_l, f_l, r_l = [], [], [], [], []
    way_nodes = np.split(inv, np.cumsum([len(k) for k in keys])[:-1])
    for i, (w, idx) in enumerate(zip(ways, way_nodes)):
        keep = idx[:-1] != idx[1:]
        fwd, bwd = traffic_directions(w.tags)
        a_l.append(idx[:-1][keep])
        b_l.append(idx[1:][keep])
        w_l.append(np.full(int(keep.sum()), i))
        f_l.append(np.full(int(keep.sum()), fwd))
        r_l.append(np.full(int(keep.sum()), bwd))
    a, b = np.concatenate(a_l), np.concatenate(b_l)
    cost = np.hypot(*(xy[b] - xy[a]).T)
    g = _Graph(lonlat, xy, a, b, cost, np.concatenate(w_l), np.concatenate(f_l).astype(bool),
               np.concatenate(r_l).astype(bool), np.zeros(len(uniq), int), list(ways))
    _bridge_gaps(g, way_nodes)
    return g


def _components(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    m = coo_matrix((np.ones(len(a)), (a, b)), shape=(n, n))
    return connected_components(m, directed=False)[1]


def _bridge_gaps(g: _Graph, way_nodes: list[np.ndarray]) -> None:
    """Join separate pieces whose way ends lie within :data:`MAX_GAP_M` of each other,
    nearest first, each pair of pieces once (a two-way straight edge)."""
    n = len(g.xy)
    comp = _components(n, g.a, g.b)
    ends = np.unique(np.concatenate([[wn[0], wn[-1]] for wn in way_nodes]))
    if comp.max(initial=0) > 0 and len(ends):
        tree = cKDTree(g.xy)
        cands = []
        for e in ends:
            for j in tree.query_ball_point(g.xy[e], MAX_GAP_M):
                if comp[j] != comp[e]:
                    cands.append((float(np.hypot(*(g.xy[j] - g.xy[e]))), int(e), int(j)))
        parent = list(range(int(comp.max()) + 1))

        def find(c: int) -> int:
            while parent[c] != c:
                parent[c] = parent[parent[c]]
                c = parent[c]
            return c

        add = []
        for d, e, j in sorted(cands):
            ce, cj = find(comp[e]), find(comp[j])
            if ce != cj:
                parent[ce] = cj
                add.append((e, j, d))
        if add:
            ea, eb, ed = (np.array(v) for v in zip(*add))
            g.a, g.b = np.concatenate([g.a, ea]), np.concatenate([g.b, eb])
            g.cost = np.concatenate([g.cost, ed])
            g.way = np.concatenate([g.way, np.full(len(add), -1)])
            g.fwd = np.concatenate([g.fwd, np.ones(len(add), bool)])
            g.bwd = np.concatenate([g.bwd, np.ones(len(add), bool)])
            comp = _components(n, g.a, g.b)
    g.comp = comp


# ----------------------------------------------------------------------------- attaching


@dataclass
class _Attach:
    edge: int
    t: float          # position along the edge, 0..1
    xy: np.ndarray
    dist: float


def _attachments(g: _Graph, p: np.ndarray, what: str) -> list[_Attach]:
    """Where point ``p`` meets the selected ways: the nearest point of each way within
    :data:`ATTACH_SLACK_M` of the nearest way overall (gap edges excluded)."""
    real = np.flatnonzero(g.way >= 0)
    A, B = g.xy[g.a[real]], g.xy[g.b[real]]
    d = B - A
    L2 = np.maximum((d ** 2).sum(1), 1e-12)
    t = np.clip(((p - A) * d).sum(1) / L2, 0.0, 1.0)
    q = A + t[:, None] * d
    dist = np.hypot(*(q - p).T)
    nearest = float(dist.min())
    if nearest > MAX_ATTACH_M:
        raise HeadError(f"{what} is {nearest:,.0f} m from the nearest selected way (more than "
                        f"{MAX_ATTACH_M:.0f} m): check it (LON,LAT order) or the selection")
    order = np.lexsort((dist, g.way[real]))
    out: list[_Attach] = []
    seen: set[int] = set()
    for k in order:
        w = int(g.way[real[k]])
        if w in seen:
            continue
        seen.add(w)
        if dist[k] <= nearest + ATTACH_SLACK_M:
            out.append(_Attach(int(real[k]), float(t[k]), q[k], float(dist[k])))
    return out


# ----------------------------------------------------------------------------- search

Moves = dict[int, list[tuple[int, float, int]]]


def _moves(g: _Graph, attach: dict[int, list[tuple[float, int]]], wrong_way: float | None) -> Moves:
    """Search moves, upstream: against the direction of traffic. A move that drives with
    the traffic (against a one-way tag) is left out when ``wrong_way`` is None, else it
    costs ``wrong_way`` times its length.

    Edges carrying attachment points are split there: ``attach[edge]`` lists
    (t, virtual node) pairs.
    """
    moves: Moves = {}

    def add(u: int, v: int, c: float, e: int, along: bool, against: bool) -> None:
        # moving u -> v upstream needs traffic v -> u
        if against or wrong_way is not None:
            moves.setdefault(u, []).append((v, c if against else c * wrong_way, e))  # type: ignore[operator]
        if along or wrong_way is not None:
            moves.setdefault(v, []).append((u, c if along else c * wrong_way, e))  # type: ignore[operator]

    for e in range(len(g.a)):
        a, b, c = int(g.a[e]), int(g.b[e]), float(g.cost[e])
        fwd, bwd = bool(g.fwd[e]), bool(g.bwd[e])
        if e not in attach:
            add(a, b, c, e, fwd, bwd)
            continue
        stops = [(0.0, a)] + sorted(attach[e]) + [(1.0, b)]
        for (t0, u), (t1, v) in zip(stops[:-1], stops[1:]):
            add(u, v, c * (t1 - t0) + 1e-9, e, fwd, bwd)
    return moves


def _dijkstra(moves: Moves, source: int) -> tuple[dict[int, float], dict[int, tuple[int, int]]]:
    dist = {source: 0.0}
    pred: dict[int, tuple[int, int]] = {}
    heap = [(0.0, source)]
    while heap:
        d, u = heapq.heappop(heap)
        if d > dist.get(u, np.inf):
            continue
        for v, c, e in moves.get(u, ()):
            nd = d + c
            if nd < dist.get(v, np.inf):
                dist[v] = nd
                pred[v] = (u, e)
                heapq.heappush(heap, (nd, v))
    return dist, pred


def _walk(pred: dict[int, tuple[int, int]], source: int, target: int) -> tuple[list[int], list[int]]:
    nodes, edges = [target], []
    while nodes[-1] != source:
        u, e = pred[nodes[-1]]
        nodes.append(u)
        edges.append(e)
    return nodes[::-1], edges[::-1]


def shortest_path(
    ways: Sequence[OsmWay],
    head: tuple[float, float] | None,
    toward: tuple[float, float] | None = None,
) -> PathResult:
    """The road from ``head`` upstream to ``toward`` (or to the end of the ways).

    Parameters
    ----------
    ways : sequence of OsmWay
        The selected ways.
    head : (lon, lat) or None
        The checkpoint. None: the longest of the shortest paths between the ways' ends
        (one-way restrictions ignored).
    toward : (lon, lat), optional
        A point on the road on the queue's side, where the path ends. Default: the
        farthest point upstream of the head.

    Returns
    -------
    PathResult

    Raises
    ------
    HeadError
        When ``head`` or ``toward`` is more than 100 m from every selected way.
    RoadError
        When the selection cannot be made into one path between them; the message names
        the ways of each separate piece.
    """
    centre = head if head is not None else tuple(ways[0].lonlat[0])
    local = geo.local_metric_crs(*centre)
    g = _build_graph(ways, local)
    if head is None:
        return _longest(g, local)
    to_local = geo.transformer(geo.WGS84, local)
    hp = np.array(to_local.transform(*head))
    h_att = _attachments(g, hp, "the head")
    t_att = _attachments(g, np.array(to_local.transform(*toward)), "--toward") if toward else []
    return _search(g, local, h_att, t_att, toward is not None)


def _search(g: _Graph, local: CRS, h_att: list[_Attach], t_att: list[_Attach], has_toward: bool) -> PathResult:
    n = len(g.xy)
    H, T = n, n + 1
    virt: dict[int, np.ndarray] = {}
    attach: dict[int, list[tuple[float, int]]] = {}
    entry: list[tuple[int, int, float]] = []  # (from, to, cost) of the super nodes
    same: dict[int, int] = {}  # virtual node -> the OSM node it lies on
    for k, at in enumerate(h_att + t_att):
        v = n + 2 + k
        virt[v] = at.xy
        if at.t in (0.0, 1.0):
            same[v] = int(g.a[at.edge] if at.t == 0.0 else g.b[at.edge])
        attach.setdefault(at.edge, []).append((at.t, v))
        cost = ATTACH_PENALTY * at.dist
        entry.append((H, v, cost) if k < len(h_att) else (v, T, cost))
    notes: list[str] = []
    for wrong_way in (None, WRONG_WAY_PENALTY):
        moves = _moves(g, attach, wrong_way)
        for u, v, c in entry:
            moves.setdefault(u, []).append((v, c, -2))
        dist, pred = _dijkstra(moves, H)
        if not has_toward:
            target = _farthest(g, dist, pred, H, notes)
        elif T in dist:
            target = T
        else:
            continue
        if wrong_way is not None:
            tpos = {v: t for pts in attach.values() for t, v in pts}
            notes.append(_wrong_way_note(g, _walk(pred, H, target), tpos))
        return _result(g, local, virt, pred, H, target, notes, same)
    raise RoadError(_pieces_message(g, h_att, t_att))


def _wrong_way_note(g: _Graph, walk: tuple[list[int], list[int]], tpos: dict[int, float]) -> str:
    """Say which ways the path takes against their one-way tags, and for how long."""
    nodes, edges = walk
    against: dict[str, float] = {}
    for u, v, e in zip(nodes[:-1], nodes[1:], edges):
        if e < 0 or g.way[e] < 0:
            continue
        t = {int(g.a[e]): 0.0, int(g.b[e]): 1.0}
        tu, tv = tpos.get(u, t.get(u, 0.0)), tpos.get(v, t.get(v, 1.0))
        # moving along the way's order (tu < tv) upstream needs traffic against it
        if not (g.bwd[e] if tu < tv else g.fwd[e]):
            label = g.ways[int(g.way[e])].label
            against[label] = against.get(label, 0.0) + float(g.cost[e]) * abs(tv - tu)
    shown = ", ".join(list(against)[:6]) + (f" and {len(against) - 6} more" if len(against) > 6 else "")
    return (f"no selected way leads from --toward to the head in the direction of traffic: the "
            f"path runs {sum(against.values()):,.0f} m against the one-way tags of {shown} "
            "(add the missing carriageway with --road-id, or check the head)")


def _farthest(g: _Graph, dist: dict[int, float], pred: dict[int, tuple[int, int]], H: int,
              notes: list[str]) -> int:
    """The end of the road upstream of the head: the reachable OSM node farthest from the
    head as the crow flies (not the farthest by path, which may be a ramp reached by a
    detour); note a long other side."""
    n = len(g.xy)
    real = np.array([v for v in dist if v < n])
    crow = np.hypot(*g.xy[real].T)  # the local frame is centred on the head
    target = int(real[np.argmax(crow)])
    first: dict[int, int] = {}  # the node each one is reached through, first after the head
    for v in sorted(dist, key=dist.get):  # type: ignore[arg-type]
        if v == H:
            continue
        u = pred[v][0]
        first[v] = v if u == H or pred.get(u, (None,))[0] == H else first[u]
    other = crow[np.array([first[v] != first[target] for v in real])]
    if other.size and other.max() > OTHER_SIDE_NOTE_M:
        notes.append(f"the selected ways also run {other.max() / 1000:.2f} km (as the crow flies) "
                     f"on the other side of the head; the path takes the longer side "
                     f"({crow.max() / 1000:.2f} km): give --toward to choose")
    return target


def _result(g: _Graph, local: CRS, virt: dict[int, np.ndarray], pred: dict[int, tuple[int, int]],
            H: int, target: int, notes: list[str], same: dict[int, int] | None = None) -> PathResult:
    nodes, edges = _walk(pred, H, target)
    inner = [(same or {}).get(v, v) for v in nodes if v < len(g.xy) or v in virt]
    xy = np.array([g.xy[v] if v < len(g.xy) else virt[v] for v in inner])
    lon, lat = geo.transformer(local, geo.WGS84).transform(xy[:, 0], xy[:, 1])
    ll = np.column_stack([lon, lat])
    real_ll = {v: g.lonlat[v] for v in inner if v < len(g.xy)}
    for i, v in enumerate(inner):  # OSM nodes keep their exact positions
        if v in real_ll:
            ll[i] = real_ll[v]
    ways: list[int] = []
    gaps: list[float] = []
    for e in edges:
        if e < 0:
            continue
        w = int(g.way[e])
        if w < 0:
            gaps.append(float(g.cost[e]))
            notes.append(f"bridged a {g.cost[e]:.1f} m gap between OSM ways {_ways_at(g, e)}")
        elif not ways or ways[-1] != g.ways[w].id:
            ways.append(g.ways[w].id)
    keep = np.concatenate([[True], np.hypot(*np.diff(xy, axis=0).T) > 1e-6])
    for i in np.flatnonzero(~keep):  # a point on an OSM node: keep the node's exact position
        if inner[i] < len(g.xy):
            ll[i - 1] = ll[i]
    return PathResult(ll[keep], ways, notes, gaps)


def _ways_at(g: _Graph, e: int) -> str:
    """The ways that end at either side of gap edge ``e``."""
    ends = (g.a[e], g.b[e])
    touching = np.isin(g.a, ends) | np.isin(g.b, ends)
    labels = dict.fromkeys(g.ways[int(w)].label for w in g.way[touching] if w >= 0)
    return " and ".join(labels) or "(unknown)"


def _longest(g: _Graph, local: CRS) -> PathResult:
    """No head: the longest of the shortest paths between ends (two sweeps, undirected)."""
    if g.comp.max(initial=0) > 0:
        raise RoadError(_pieces_message(g, [], []))
    moves = _moves(g, {}, wrong_way=1.0)
    dist, _ = _dijkstra(moves, 0)
    a = max(dist, key=dist.get)  # type: ignore[arg-type]
    dist, pred = _dijkstra(moves, a)
    b = max(dist, key=dist.get)  # type: ignore[arg-type]
    return _result(g, local, {}, pred, a, b, [])


def _pieces_message(g: _Graph, h_att: list[_Attach], t_att: list[_Attach]) -> str:
    """Name the ways of each separate piece of the selection."""
    pieces: dict[int, list[str]] = {}
    for e in np.flatnonzero(g.way >= 0):
        label = g.ways[int(g.way[e])].label
        lst = pieces.setdefault(int(g.comp[g.a[e]]), [])
        if label not in lst:
            lst.append(label)
    role: dict[int, str] = {}
    for atts, name in ((h_att, "head"), (t_att, "toward")):
        for at in atts:
            c = int(g.comp[g.a[at.edge]])
            role[c] = name if role.get(c, name) == name else "head, toward"
    parts = []
    rank = {"head": 0, "head, toward": 0, "toward": 1}
    for c, labels in sorted(pieces.items(), key=lambda kv: (rank.get(role.get(kv[0], ""), 2), -len(kv[1]))):
        shown = ", ".join(labels[:6]) + (f" and {len(labels) - 6} more" if len(labels) > 6 else "")
        parts.append(f"[{shown}]" + (f" ({role[c]})" if c in role else ""))
    return (f"the selected ways do not form one path: they fall into {len(pieces)} pieces more than "
            f"{MAX_GAP_M:.0f} m apart: {'; '.join(parts)}; narrow the selection or add the "
            "ways between them (--road-id)")
