"""Training chips and splits of the learned detector's training code (no torch needed)."""

from __future__ import annotations

import numpy as np
import pytest

from queuemeasure.train import sheets as S
from queuemeasure.train.targets import SCALE_RANGE, _crop, _scaled_crop, chip, prepare


def _sheet(n_rows: int = 200, n_cols: int = 60) -> S.Sheet:
    """A grey road with dark 4.5 m x 1.8 m cars on the 0.25 m grid (SYNTHETIC)."""
    img = np.full((n_rows, n_cols, 3), 0.5, np.float32)
    boxes = []
    for r in range(10, n_rows - 30, 28):
        img[r:r + 18, 20:27] = 0.1
        boxes.append([r, r + 18, 20, 27])
    return S.Sheet("synthetic", img, np.ones((n_rows, n_cols), bool), np.array(boxes, float), source="synth")


def _peaks(t: np.ndarray) -> np.ndarray:
    return np.argwhere(t[5] > 0)


def test_scaled_chip_targets_follow_the_zoom():
    p = prepare(_sheet())
    rng = np.random.default_rng(3)
    for _ in range(20):
        x, t = _scaled_crop(p, rng)
        assert x.shape == (4, p.chip, p.chip) and t.shape == (7, p.chip // 2, p.chip // 2)
        assert set(np.unique(x[3])) <= {0.0, 1.0}
        lengths_m = np.exp(t[1][t[5] > 0])
        # every car is 4.5 m long in the sheet: 3.6-5.6 m after a zoom of 0.8-1.25
        assert np.all(lengths_m > 4.5 * SCALE_RANGE[0] - 0.01) and np.all(lengths_m < 4.5 * SCALE_RANGE[1] + 0.01)
        # each centre cell lies on a dark (car) pixel of the zoomed chip
        for i, j in _peaks(t):
            r, c = 2 * i + 1, 2 * j + 1
            assert x[3, r, c] == 1 and x[0, r - 1:r + 2, c - 1:c + 2].min() < x[0].max() - 0.5


def test_unzoomed_chips_are_unchanged_by_the_option_at_zero():
    p = prepare(_sheet())
    a = chip(p, np.random.default_rng(7), scales=0.0)
    b = chip(p, np.random.default_rng(7))
    x, t = _crop(p, np.random.default_rng(7))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert x.shape == a[0].shape


def test_scaled_chips_are_drawn_at_the_rate_asked():
    p = prepare(_sheet())
    rng = np.random.default_rng(0)
    ts = [chip(p, rng, scales=1.0)[1] for _ in range(5)]
    lengths = [np.exp(t[1][t[5] > 0]) for t in ts]
    assert any(np.any(np.abs(v - 4.5) > 0.1) for v in lengths if v.size)


@pytest.mark.skipif(not (S.REALDATA / "minsk_drone_cars").is_dir(), reason="needs ../shared/realdata")
def test_test_flights_leave_training_and_validation():
    train = {S.flight_of(p.name) for p in S.minsk_files(False, ("single",))}
    val = {S.flight_of(p.name) for p in S.minsk_files(True, ("single",))}
    test = {S.flight_of(p.name) for p in S.minsk_test_files(("single",))}
    assert test == {"single"} and "single" not in train | val
    assert val == set(S.MINSK_VAL_FLIGHTS) and not train & val
    assert "single" in {S.flight_of(p.name) for p in S.minsk_files(False)}
    every = S.minsk_files(False) + S.minsk_files(True)
    assert every and not {p.stem for p in every} & set(S.MINSK_EXCLUDED)


def test_focused_chips_hold_a_vehicle():
    s = _sheet(n_rows=2000)                      # 500 m: a random chip often holds no car
    s.boxes = s.boxes[:3]                        # cars only in the first 25 m
    s.image[:] = 0.5
    for r0, r1, c0, c1 in s.boxes.astype(int):
        s.image[r0:r1, c0:c1] = 0.1
    p = prepare(s)
    rng = np.random.default_rng(5)
    for scales in (0.0, 1.0):
        held = [chip(p, rng, scales=scales, focus=1.0)[1][5].any() for _ in range(30)]
        assert all(held)
    plain = [chip(p, rng)[1][5].any() for _ in range(30)]
    assert sum(plain) < 10
