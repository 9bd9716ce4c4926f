"""The learned detector's check for road markings taken for vehicles (a dash of the
centre line chained into a queue down an empty road)."""

from __future__ import annotations

import numpy as np

from queuemeasure.detect.learned._decode import Boxes
from queuemeasure.detect.learned._markings import off_markings

STEP = 0.25


def _strip(rng):
    img = np.full((800, 60, 3), 0.30, np.float32) + rng.normal(0, 0.01, (800, 60, 1)).astype(np.float32)
    return img


def _box(row, col, length=4.4, width=1.8):
    return dict(row=row, col=col, length_m=length, width_m=width)


def _boxes(*bs):
    return Boxes(*(np.array([b[k] for b in bs], float) for k in ("row", "col", "length_m", "width_m")),
                 np.full(len(bs), 0.5))


def test_a_dash_is_dropped_a_car_beside_it_and_a_dark_car_are_kept():
    rng = np.random.default_rng(0)
    img = _strip(rng)
    img[100:112, 29:31] = 0.85                      # a dash: 3 m x 0.5 m on the centre line
    img[300:318, 12:19] = (0.75, 0.10, 0.10)        # a red car, 4.5 x 1.75 m
    img[500:518, 12:19] = 0.26                      # a dark car on dark asphalt
    img[300:312, 29:31] = 0.85                      # a dash beside the red car
    ok = np.ones(img.shape[:2], bool)
    carriage = np.ones(60, bool)
    boxes = _boxes(_box(106, 30), _box(309, 15.5), _box(509, 15.5), _box(306, 30))
    kept = off_markings(boxes, img, ok, carriage, STEP, 0.5)
    assert sorted(kept.row.tolist()) == [309, 509]


def test_nothing_dropped_on_a_plain_road_or_without_boxes():
    rng = np.random.default_rng(1)
    img = _strip(rng)
    ok = np.ones(img.shape[:2], bool)
    boxes = _boxes(_box(200, 30))
    assert len(off_markings(boxes, img, ok, np.ones(60, bool), STEP, 0.5).prob) == 1
    empty = Boxes(*(np.zeros(0) for _ in range(5)))
    assert len(off_markings(empty, img, ok, np.ones(60, bool), STEP, 0.5).prob) == 0
