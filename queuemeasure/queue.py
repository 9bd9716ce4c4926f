"""Chain vehicles into a queue from the head, measure it and bound its uncertainty.

Pure functions over along-road intervals (geodesic metres from the head); no pixels, no
I/O. The rule is DESIGN.md's: the vehicle nearest the head (its front within ``max_gap``
of the head), then, in order along the road, each next vehicle whose front is at most
``max_gap`` beyond the rearmost point the queue has reached so far. Lanes do not matter.
Occluded stretches (trees, cloud, nodata) do not count towards a gap. When the chain can
reach the end of what is observed (image edge, end of valid data, end of the road), the
queue is *truncated* and its length is a lower bound.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

__all__ = [
    "QueueChain",
    "merge_intervals",
    "occluded_between",
    "chain_queue",
    "chain_queue_bridged",
    "length_range",
]


@dataclass(frozen=True)
class QueueChain:
    """The queue found by :func:`chain_queue`.

    Attributes
    ----------
    members : ndarray of int
        Indices of the queued vehicles in the input arrays, in chain order.
    start_m, end_m : float
        Stations of the front of the first and the rear of the last queued vehicle.
    truncated : bool
        True when the queue may continue beyond what is observed.
    reason : str or None
        Why it is truncated: ``"road_end"``, ``"image_edge"`` or ``"nodata"``.
    occluded_m : float
        Length of occluded road between ``start_m`` and ``end_m``.
    """

    members: np.ndarray
    start_m: float
    end_m: float
    truncated: bool
    reason: str | None
    occluded_m: float

    @property
    def length_m(self) -> float:
        """Along-road length from the front of the first to the rear of the last vehicle."""
        return max(0.0, self.end_m - self.start_m) if self.members.size else 0.0

    @property
    def count(self) -> int:
        """Number of queued vehicles."""
        return int(self.members.size)


def merge_intervals(intervals: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    """Sort and merge overlapping [a, b] intervals; returns an (K, 2) array."""
    iv = np.asarray(intervals, dtype=float).reshape(-1, 2)
    iv = iv[iv[:, 1] > iv[:, 0]]
    if iv.size == 0:
        return np.zeros((0, 2))
    iv = iv[np.argsort(iv[:, 0])]
    out = [iv[0].copy()]
    for a, b in iv[1:]:
        if a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append(np.array([a, b]))
    return np.array(out)


def occluded_between(a: np.ndarray | float, b: np.ndarray | float, occluded: np.ndarray) -> np.ndarray:
    """Length of the merged ``occluded`` intervals that lies inside [a, b] (vectorised)."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if occluded.size == 0:
        return np.zeros(np.broadcast(a, b).shape)
    lo = np.maximum(a[..., None], occluded[:, 0])
    hi = np.minimum(b[..., None], occluded[:, 1])
    return np.clip(hi - lo, 0.0, None).sum(axis=-1)


def chain_queue(
    s0: np.ndarray,
    s1: np.ndarray,
    *,
    max_gap_m: float,
    occluded: Sequence[Sequence[float]] | np.ndarray = (),
    observed_end_m: float = np.inf,
    end_reason: str = "road_end",
) -> QueueChain:
    """Chain vehicles from the head (station 0).

    Parameters
    ----------
    s0, s1 : array_like
        Front and rear stations of each vehicle (metres from the head, s1 >= s0).
    max_gap_m : float
        Largest visible gap inside a queue.
    occluded : (K, 2) array_like
        Stretches where the road is hidden; they do not count towards a gap.
    observed_end_m : float
        Station where observation ends (end of the road, of the image or of valid data).
    end_reason : str
        What ends the observation at ``observed_end_m``; returned as ``reason`` when
        the queue reaches it.

    Returns
    -------
    QueueChain

    Examples
    --------
    >>> c = chain_queue([5, 12, 80], [9.5, 16.5, 84.5], max_gap_m=50)
    >>> c.count, c.length_m
    (2, 11.5)
    """
    s0 = np.asarray(s0, dtype=float).ravel()
    s1 = np.maximum(np.asarray(s1, dtype=float).ravel(), s0)
    occ = merge_intervals(occluded)
    order = np.argsort(s0, kind="stable")
    # walking the vehicles from the head: the rearmost point reached before each one is
    # the running maximum of the rears before it (from 0, the head); the chain breaks at
    # the first gap wider than max_gap once its occluded part is taken off
    s0_o = s0[order]
    reached = np.fmax.accumulate(np.concatenate([[0.0], s1[order]]))  # as max(): NaN ignored
    gap = s0_o - reached[:-1]
    wide = np.flatnonzero(gap > max_gap_m)
    n = s0_o.size
    if wide.size:
        # only the unoccluded part of a gap counts
        visible = gap[wide] - occluded_between(reached[:-1][wide], s0_o[wide], occ)
        breaks = np.flatnonzero(visible > max_gap_m)
        n = int(wide[breaks[0]]) if breaks.size else n
    members = order[:n]
    start = float(s0_o[0]) if n else np.nan
    end = float(reached[n]) if n else 0.0
    truncated = False
    if np.isfinite(observed_end_m):
        rest = max(0.0, observed_end_m - end)
        truncated = bool(rest - float(occluded_between(end, observed_end_m, occ)) <= max_gap_m)
    if n:
        occ_in = float(occluded_between(start, end, occ))
    else:
        start, occ_in = 0.0, 0.0
    return QueueChain(
        members=np.asarray(members, dtype=np.int64),
        start_m=float(start),
        end_m=float(end),
        truncated=truncated,
        reason=end_reason if truncated else None,
        occluded_m=occ_in,
    )


def chain_queue_bridged(
    s0: np.ndarray,
    s1: np.ndarray,
    score: np.ndarray,
    *,
    max_gap_m: float,
    accept: float = 1.0,
    bridge: float = 0.6,
    min_run: int = 3,
    occluded: Sequence[Sequence[float]] | np.ndarray = (),
    observed_end_m: float = np.inf,
    end_reason: str = "road_end",
    offset: np.ndarray | None = None,
    lane_margin_m: float = 2.0,
) -> QueueChain:
    """Chain accepted vehicles, letting weak candidates close the gaps between them.

    A gap ends a queue only when it is a confident gap: the chain runs over every
    detection scoring at least ``bridge`` and is then cut back to its last vehicle scoring
    at least ``accept``. Weak candidates therefore never extend the queue's tail, and a
    road holding only weak candidates has no queue; between accepted vehicles, a weak
    candidate (most often a vehicle in low contrast) keeps a dense queue from breaking.
    A gap that only weak candidates close counts only when at least ``min_run`` accepted
    vehicles, chained by themselves, follow it. Given ``offset`` (metres across the road),
    a weak candidate bridges only within the lanes the accepted vehicles stand in (their
    10th to 90th percentile offsets, widened by ``lane_margin_m``): faint responses on a
    kerb or verge do not hold a queue together.

    Returns
    -------
    QueueChain
        Its ``members`` index the input arrays.
    """
    s0 = np.asarray(s0, dtype=float).ravel()
    s1 = np.asarray(s1, dtype=float).ravel()
    score = np.asarray(score, dtype=float).ravel()
    usable = score >= bridge
    if offset is not None:
        usable &= _in_lanes(np.asarray(offset, dtype=float).ravel(), score >= accept, lane_margin_m) \
            | (score >= accept)
    cand = np.flatnonzero(usable)
    loose = chain_queue(s0[cand], s1[cand], max_gap_m=max_gap_m, occluded=occluded,
                        observed_end_m=observed_end_m, end_reason=end_reason)
    members = cand[loose.members]
    is_strong = score[members] >= accept
    # walk the accepted vehicles in chain order; a gap wider than max_gap between them
    # that only weak candidates close counts only when a run of at least `min_run`
    # accepted vehicles, chained by themselves, follows it (a queue going on, not free
    # traffic beyond the tail reached over a few weak detections)
    strong_pos = np.flatnonzero(is_strong)
    ss0, ss1 = s0[members][strong_pos], s1[members][strong_pos]
    # the rearmost point the accepted vehicles before each one reach (as max(): NaN ignored)
    reach = np.fmax.accumulate(np.concatenate([[-np.inf], ss1]))[:-1]
    stop = strong_pos.size
    ss0_l, ss1_l = ss0.tolist(), ss1.tolist()
    for k in np.flatnonzero(ss0 - reach > max_gap_m).tolist():
        if k == 0:
            continue
        run, r = 1, ss1_l[k]
        for j in range(k + 1, strong_pos.size):
            if ss0_l[j] - r > max_gap_m or run >= min_run:
                break
            run, r = run + 1, max(r, ss1_l[j])
        if run < min_run:
            stop = k
            break
    keep_until = int(strong_pos[stop - 1]) if stop > 0 else -1
    members = members[: keep_until + 1]
    chain = chain_queue(s0[members], s1[members], max_gap_m=max_gap_m, occluded=occluded,
                        observed_end_m=observed_end_m, end_reason=end_reason)
    return QueueChain(members[chain.members], chain.start_m, chain.end_m, chain.truncated,
                      chain.reason, chain.occluded_m)


def _in_lanes(offset: np.ndarray, accepted: np.ndarray, margin: float, min_n: int = 5) -> np.ndarray:
    """Offsets within the band across the road that accepted vehicles occupy (everything,
    when fewer than ``min_n`` are accepted)."""
    if int(accepted.sum()) < min_n:
        return np.ones(offset.shape, bool)
    lo, hi = np.percentile(offset[accepted], [10.0, 90.0])
    return (offset >= lo - margin) & (offset <= hi + margin)


def _tail_allowance(fronts: np.ndarray, max_gap_m: float, spacing_m: float, n: int = 10) -> float:
    """How much further the tail may lie if the queue's last vehicle was missed: 1.5 times
    the median front-to-front spacing of its last ``n`` vehicles (``spacing_m`` when it has
    fewer than three), at most ``max_gap_m``."""
    f = np.sort(np.asarray(fronts, dtype=float))[-n:]
    gaps = np.diff(f)
    typical = float(np.median(gaps)) if gaps.size >= 2 else spacing_m
    return float(min(max_gap_m, 1.5 * max(typical, 0.0)))


def length_range(
    s0: np.ndarray,
    s1: np.ndarray,
    score: np.ndarray,
    *,
    max_gap_m: float,
    gsd_m: float,
    occluded: Sequence[Sequence[float]] | np.ndarray = (),
    observed_end_m: float = np.inf,
    score_cuts: Sequence[float] = (1.25, 1.0, 0.75),
    gap_factors: Sequence[float] = (0.8, 1.0, 1.25),
    end_pad_m: float = 1.5,
    spacing_m: float = 7.0,
    bridge: float = 0.6,
    offset: np.ndarray | None = None,
    min_run: int = 3,
) -> tuple[float, float]:
    """Bound the queue length over what moves its ends.

    - Detection threshold and ``max_gap``: the queue is chained again (as
      :func:`chain_queue_bridged` chains the measurement) for every combination of an
      acceptance cut (strict, nominal, lenient: which weak detections count) and a
      ``max_gap`` factor; the range spans the shortest and longest lengths.
    - The last vehicle may be a false detection: the nominal queue without it bounds the
      low end.
    - A vehicle ahead of the first one may have been missed: when the first detected front
      lies more than ``end_pad_m`` from the head, the high end grows by up to one vehicle
      spacing (``spacing_m``, and never past the head).
    - The last vehicle may have been missed (low contrast, a gap in the detections): the
      high end grows by 1.5 times the median front-to-front spacing of the queue's last
      10 vehicles (at most ``max_gap``).
    - Bumper positions: each end of every length is uncertain by
      ``max(2 pixels, end_pad_m)``.
    - Occlusion: when an occluded stretch starts within ``max_gap`` of the nominal tail, the
      queue may go on unseen to its end.

    ``min_run`` is :func:`chain_queue_bridged`'s (1 for occupied stretches, each of which
    stands for many vehicles).

    Returns
    -------
    (low_m, high_m) : tuple of float
    """
    s0 = np.asarray(s0, dtype=float).ravel()
    s1 = np.asarray(s1, dtype=float).ravel()
    score = np.asarray(score, dtype=float).ravel()
    occ = merge_intervals(occluded)
    lengths = []
    for cut in score_cuts:
        for f in gap_factors:
            # the same method as the measurement, with this acceptance cut and gap
            c = chain_queue_bridged(s0, s1, score, max_gap_m=max_gap_m * f, accept=cut,
                                    bridge=min(bridge, cut), occluded=occ,
                                    observed_end_m=observed_end_m, offset=offset, min_run=min_run)
            lengths.append(c.length_m)
    nominal = chain_queue_bridged(s0, s1, score, max_gap_m=max_gap_m, bridge=bridge,
                                  occluded=occ, observed_end_m=observed_end_m, offset=offset,
                                  min_run=min_run)
    if nominal.count == 0:
        return 0.0, float(max(lengths))
    pad = max(2.0 * gsd_m, end_pad_m)
    low, high = min(lengths), max(lengths)
    if nominal.count > 1:
        rest = nominal.members[:-1]
        low = min(low, float(s1[rest].max() - nominal.start_m))
    if nominal.start_m > end_pad_m:
        high += min(nominal.start_m, spacing_m)
    # the last vehicle of the queue may have been missed: the tail may lie one (generous)
    # spacing of the queue's own tail further on
    high += _tail_allowance(s0[nominal.members], max_gap_m, spacing_m)
    low, high = max(0.0, low - 2 * pad), high + 2 * pad
    if occ.size:
        nxt = occ[(occ[:, 1] > nominal.end_m) & (occ[:, 0] <= nominal.end_m + max_gap_m)]
        if nxt.size:
            hidden_end = min(float(nxt[:, 1].max()), observed_end_m)
            high = max(high, hidden_end - nominal.start_m + pad)
    return float(low), float(high)
