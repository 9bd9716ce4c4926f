"""Queue chaining, truncation, occlusion and the uncertainty range."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from queuemeasure.queue import (
    chain_queue,
    chain_queue_bridged,
    length_range,
    merge_intervals,
    occluded_between,
)


def test_chain_stops_at_a_gap_wider_than_max_gap():
    s0 = np.array([2.0, 8.0, 14.0, 80.0])
    c = chain_queue(s0, s0 + 4.5, max_gap_m=50)
    assert c.count == 3 and c.length_m == pytest.approx(16.5)
    assert not c.truncated


def test_first_vehicle_must_be_near_the_head():
    c = chain_queue([60.0, 66.0], [64.5, 70.5], max_gap_m=50)
    assert c.count == 0 and c.length_m == 0.0


def test_lanes_do_not_matter_and_long_truck_extends_reach():
    # a truck 0-15 m, a car beside it 2-6.5, next car 60 m -> within 50 of the truck's rear
    c = chain_queue([0.0, 2.0, 60.0], [15.0, 6.5, 64.5], max_gap_m=50)
    assert c.count == 3 and c.length_m == pytest.approx(64.5)


def test_occlusion_does_not_break_the_chain():
    s0 = np.array([1.0, 7.0, 200.0])
    s1 = s0 + 4.5
    assert chain_queue(s0, s1, max_gap_m=50).count == 2
    c = chain_queue(s0, s1, max_gap_m=50, occluded=[(20.0, 180.0)])
    assert c.count == 3
    assert c.occluded_m == pytest.approx(160.0)


def test_truncated_when_the_chain_reaches_the_end_of_observation():
    s0 = np.arange(0, 500, 7.0)
    c = chain_queue(s0, s0 + 4.5, max_gap_m=50, observed_end_m=520, end_reason="image_edge")
    assert c.truncated and c.reason == "image_edge"
    c = chain_queue(s0, s0 + 4.5, max_gap_m=50, observed_end_m=700)
    assert not c.truncated and c.reason is None


def test_empty_road():
    c = chain_queue([], [], max_gap_m=50, observed_end_m=1000)
    assert c.count == 0 and c.length_m == 0 and not c.truncated


def test_intervals_helpers():
    m = merge_intervals([(5, 8), (0, 2), (1, 3), (8, 9)])
    np.testing.assert_allclose(m, [[0, 3], [5, 9]])
    assert occluded_between(0, 6, m) == pytest.approx(4.0)


def test_range_brackets_the_length_and_widens_at_gap_edge():
    s0 = np.array([1.0, 7.0, 13.0, 13.0 + 4.5 + 55.0])  # last gap 55 m: outside nominal, inside 1.25x
    s1 = s0 + 4.5
    score = np.ones(4)
    lo, hi = length_range(s0, s1, score, max_gap_m=50, gsd_m=0.5)
    nominal = chain_queue(s0, s1, max_gap_m=50).length_m
    assert lo <= nominal <= hi
    assert hi >= s1[-1] - s0[0]
    # a weak detection only extends the high end
    lo2, hi2 = length_range(s0[:3], s1[:3], np.array([1.0, 1.0, 0.8]), max_gap_m=50, gsd_m=0.5)
    assert lo2 <= 6.5 and hi2 >= 16.5


def _dense(n: int, start: float = 1.0, spacing: float = 7.0) -> np.ndarray:
    return start + spacing * np.arange(n)


def test_weak_candidates_bridge_only_within_the_queues_lanes():
    # 8 accepted cars in the right lane, a 40 m hole, 3 accepted cars beyond it (free
    # traffic); weak responses in the hole sit either in the lane or on the kerb (-4.4 m)
    s0 = np.concatenate([_dense(8), [92.0, 131.0], _dense(3, 170.0)])
    s1 = s0 + 4.5
    score = np.array([2.0] * 8 + [0.8, 0.8] + [2.0] * 3)
    in_lane = np.array([1.8] * 8 + [1.5, 2.0] + [1.8] * 3)
    on_kerb = np.array([1.8] * 8 + [-4.4, -4.4] + [1.8] * 3)
    bridged = chain_queue_bridged(s0, s1, score, max_gap_m=50, offset=in_lane)
    assert bridged.count == 13
    kerb = chain_queue_bridged(s0, s1, score, max_gap_m=50, offset=on_kerb)
    assert kerb.count == 8 and kerb.end_m == pytest.approx(s1[7])
    # without offsets every weak candidate may bridge, as before
    assert chain_queue_bridged(s0, s1, score, max_gap_m=50).count == 13


def test_range_allows_for_a_missed_last_vehicle():
    s0 = _dense(12)
    s1 = s0 + 4.5
    lo, hi = length_range(s0, s1, np.ones(12), max_gap_m=50, gsd_m=0.5)
    nominal = s1[-1] - s0[0]
    # one more car at the queue's own spacing (7 m) fits under the high end
    assert hi >= nominal + 7.0
    assert hi <= nominal + 1.5 * 7.0 + 4 * 1.5 + 1e-9
    assert lo <= nominal


vehicles = st.lists(st.tuples(st.floats(0, 2000), st.floats(3.5, 16.0)), max_size=60)


@settings(max_examples=80, deadline=None)
@given(v=vehicles, gap=st.floats(5, 120), road=st.floats(100, 3000))
def test_chain_properties(v, gap, road):
    s0 = np.array([a for a, _ in v] or [0.0])[: len(v)]
    s1 = np.array([a + b for a, b in v] or [0.0])[: len(v)]
    keep = s1 <= road
    s0, s1 = s0[keep], s1[keep]
    c = chain_queue(s0, s1, max_gap_m=gap, observed_end_m=road)
    # never longer than the road searched
    assert 0 <= c.length_m <= road + 1e-9
    # adding a vehicle beyond max_gap of the tail never changes the queue
    far = c.end_m + gap + 1.0 if c.count else gap + 1.0
    c2 = chain_queue(np.append(s0, far), np.append(s1, far + 4.5), max_gap_m=gap,
                     observed_end_m=max(road, far + 10))
    assert c2.length_m == pytest.approx(c.length_m)
    assert c2.count == c.count
    # a larger max_gap never shortens the queue
    c3 = chain_queue(s0, s1, max_gap_m=gap * 1.5, observed_end_m=road)
    assert c3.length_m >= c.length_m - 1e-9
