"""Detection on worker processes (queuemeasure.parallel): same results, safe fallbacks."""

from __future__ import annotations

import json
import multiprocessing
import os
import threading
import warnings

import pytest
from click.testing import CliRunner

import queuemeasure as qm
from conftest import SAMPLES
from queuemeasure import parallel
from queuemeasure.cli.main import cli
from queuemeasure.errors import OptionError

LARS = "upper_lars_2022-09-26_SYNTHETIC"
linux_fork = pytest.mark.skipif(not parallel._fork_is_safe(), reason="workers fork on Linux only")


def _lars(**kw):
    truth = json.loads((SAMPLES / f"{LARS}.truth.geojson").read_text())["properties"]
    return qm.measure(SAMPLES / f"{LARS}.tif", SAMPLES / f"{LARS}.road.geojson",
                      head=truth["head_lonlat"], max_gap=truth["max_gap_m"], **kw)


@linux_fork
@pytest.mark.slow
def test_workers_do_not_change_the_result(monkeypatch):
    started = []
    real = parallel.Workers.__enter__

    def spy(self):
        started.append(self.workers)
        return real(self)

    monkeypatch.setattr(parallel.Workers, "__enter__", spy)
    one = _lars(workers=1)
    assert started and set(started) == {0}
    started.clear()
    two = _lars(workers=2)
    assert 2 in started            # the 20 km road is 14 pieces: detected on two processes
    assert two.length_km == one.length_km
    assert two.length_km_range == one.length_km_range
    assert two.vehicle_count == one.vehicle_count
    assert [(v.s0_m, v.s1_m, v.score) for v in two.vehicles] == \
        [(v.s0_m, v.s1_m, v.score) for v in one.vehicles]
    assert multiprocessing.active_children() == []   # the workers are gone


def test_resolve_workers_defaults_and_limits(monkeypatch):
    monkeypatch.delenv(parallel.ENV_WORKERS, raising=False)
    # (earlier tests may leave a thread behind, e.g. Dask's offload thread)
    monkeypatch.setattr(parallel.threading, "active_count", lambda: 1)
    monkeypatch.setattr(parallel, "_fork_is_safe", lambda: True)
    monkeypatch.setattr(parallel, "_usable_cpus", lambda: 8)
    assert parallel.resolve_workers(None, pieces=14) == parallel.DEFAULT_MAX_WORKERS
    assert parallel.resolve_workers(None, pieces=1) == 0       # one piece: no fork
    assert parallel.resolve_workers(3, pieces=14) == 3
    assert parallel.resolve_workers(3, pieces=2) == 2          # no more workers than pieces
    assert parallel.resolve_workers(1, pieces=14) == 0
    monkeypatch.setattr(parallel, "_usable_cpus", lambda: 1)
    assert parallel.resolve_workers(None, pieces=14) == 0      # one core: nothing to gain
    monkeypatch.setenv(parallel.ENV_WORKERS, "1")
    assert parallel.resolve_workers(None, pieces=14) == 0
    monkeypatch.setenv(parallel.ENV_WORKERS, "2")
    assert parallel.resolve_workers(None, pieces=14) == 2      # asked for: even on one core
    for bad in ("two", "0", "-1", "1.5"):
        monkeypatch.setenv(parallel.ENV_WORKERS, bad)
        with pytest.raises(OptionError, match=parallel.ENV_WORKERS if bad in ("two", "1.5") else "workers"):
            parallel.resolve_workers(None, pieces=14)
    monkeypatch.delenv(parallel.ENV_WORKERS)
    for bad in (0, -2, 65, True):
        with pytest.raises(OptionError, match="workers"):
            parallel.resolve_workers(bad, pieces=14)


def test_no_fork_where_it_is_unsafe(monkeypatch):
    monkeypatch.delenv(parallel.ENV_WORKERS, raising=False)
    monkeypatch.setattr(parallel, "_usable_cpus", lambda: 8)
    if parallel._fork_is_safe():
        # another thread running (Jupyter's kernel, a threaded server): not by default
        stop = threading.Event()
        t = threading.Thread(target=stop.wait)
        t.start()
        try:
            assert parallel.resolve_workers(None, pieces=14) == 0
            assert parallel.resolve_workers(2, pieces=14) == 2   # asked for explicitly
        finally:
            stop.set()
            t.join()
    # in a daemonic process (a Dask or multiprocessing worker), or without fork: never
    monkeypatch.setattr(parallel, "_fork_is_safe", lambda: False)
    assert parallel.resolve_workers(None, pieces=14) == 0
    assert parallel.resolve_workers(4, pieces=14) == 0


def test_daemonic_process_does_not_fork(monkeypatch):
    monkeypatch.setattr(multiprocessing.current_process(), "_config",
                        dict(multiprocessing.current_process()._config, daemon=True))
    assert parallel._fork_is_safe() is False


def _square(ctx, x):
    return ctx + x * x


def _die_in_worker(parent, x):
    if os.getpid() != parent and x == 3:
        os._exit(9)   # killed, as by the kernel's OOM killer
    return x * 10


@pytest.mark.parametrize("n", [0, pytest.param(2, marks=linux_fork)])
def test_workers_keep_order_and_bound_the_backlog(n):
    with parallel.Workers(_square, 1, workers=n) as w:
        got = []
        for x in range(12):
            w.submit(x)
            got.extend(w.ready())
            assert len(w._pending) <= 2 * w.workers   # in process: nothing left pending
        got.extend(w.drain())
    assert got == [1 + x * x for x in range(12)]
    assert multiprocessing.active_children() == []


@linux_fork
def test_a_dead_worker_falls_back_to_this_process():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with parallel.Workers(_die_in_worker, os.getpid(), workers=2) as w:
            for x in range(8):
                w.submit(x)
            got = list(w.drain())
    assert got == [x * 10 for x in range(8)]   # every item, in order, none twice
    assert w.lost
    assert any(issubclass(c.category, parallel.WorkerLostWarning) for c in caught)
    assert multiprocessing.active_children() == []


def test_bad_workers_variable_is_one_line_and_exit_2(monkeypatch):
    monkeypatch.setenv(parallel.ENV_WORKERS, "lots")
    name = "curve_utm_SYNTHETIC"
    res = CliRunner().invoke(cli, ["measure", str(SAMPLES / f"{name}.tif"),
                                   "--road", str(SAMPLES / f"{name}.road.geojson")])
    assert res.exit_code == 2
    assert parallel.ENV_WORKERS in res.output
    assert "Traceback" not in res.output


def test_cli_workers_option(monkeypatch):
    name = "curve_utm_SYNTHETIC"
    args = ["measure", str(SAMPLES / f"{name}.tif"), "--road", str(SAMPLES / f"{name}.road.geojson")]
    bad = CliRunner().invoke(cli, args + ["--workers", "0"])
    assert bad.exit_code == 2 and "--workers" in bad.output
    seen = []
    real = parallel.resolve_workers
    monkeypatch.setattr("queuemeasure.pipeline.resolve_workers",
                        lambda w, **k: seen.append(w) or real(w, **k))
    one = CliRunner().invoke(cli, args + ["--workers", "1", "--json"])
    two = CliRunner().invoke(cli, args + ["--workers", "3", "--json"])
    assert one.exit_code == 0 and two.exit_code == 0
    assert 1 in seen and 3 in seen   # passed on to measure()
    a, b = json.loads(one.stdout), json.loads(two.stdout)
    assert a["length_km"] == b["length_km"] and a["vehicle_count"] == b["vehicle_count"]


def test_no_worker_processes_available_detects_here(monkeypatch):
    # a container without /dev/shm (no POSIX semaphores) or a fork refused by process limits
    import concurrent.futures

    class NoPool:
        def __init__(self, *a, **k):
            raise OSError(38, "Function not implemented")

    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", NoPool)
    with parallel.Workers(_square, 1, workers=2) as w:
        for x in range(4):
            w.submit(x)
        got = list(w.drain())
    assert got == [1, 2, 5, 10]
    assert w.workers == 0 and "OSError" in w.unavailable
