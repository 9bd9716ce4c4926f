"""Running the detector on worker processes, so that both cores work.

:func:`queuemeasure.measure` reads and straightens the corridor on one thread while the
pieces already read are detected. The detector is numpy and Python holding the GIL most of
the time, so a second *thread* cannot detect alongside the first (measured: 10-15 % at
best); worker *processes* can. They are forked from the measuring process once the road
is prepared: they inherit the imported modules and the road (no pickling, no imports, a
pool starts in about 10 ms), and only the strips go to them and the vehicles come back.

Forking is only safe where nothing else runs in the process: a thread holding a lock at
the fork leaves it locked forever in the child. So by default (``workers=None``) worker
processes are used only on Linux, in the main process of a program with no other Python
thread (the command line, a script), never inside a daemonic worker (Dask,
``multiprocessing``). In Jupyter (its kernel runs threads) or a threaded server, pieces
are detected in the calling process unless ``workers`` or the environment variable
``QUEUEMEASURE_WORKERS`` asks for processes. ``QUEUEMEASURE_WORKERS=1`` turns them off.

The function the workers run must not use what the fork copied but cannot share: open
files (GDAL datasets) or database connections (PROJ's proj.db, an SQLite connection not to
be used across a fork). The measuring pipeline's workers get the strips' pixels and do
numpy work and explicit-pipeline reprojections only.

The results do not depend on the number of workers: every piece is detected alone.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
import warnings
from collections import deque
from typing import Any, Callable, Iterator

from .errors import OptionError, WorkerLostWarning

__all__ = ["ENV_WORKERS", "resolve_workers", "in_worker", "Workers", "WorkerLostWarning"]

#: Environment variable that sets the number of worker processes (1 = none).
ENV_WORKERS = "QUEUEMEASURE_WORKERS"
#: Most worker processes used by default (the measuring thread needs a core too).
DEFAULT_MAX_WORKERS = 2
#: Most worker processes accepted.
MAX_WORKERS = 64


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


def _fork_is_safe() -> bool:
    return (
        sys.platform.startswith("linux")
        and "fork" in multiprocessing.get_all_start_methods()
        and not multiprocessing.current_process().daemon
    )


def resolve_workers(workers: int | None, *, pieces: int) -> int:
    """The number of worker processes to detect ``pieces`` pieces of road with.

    Parameters
    ----------
    workers : int or None
        Asked for by the caller; None takes ``$QUEUEMEASURE_WORKERS``, else up to
        ``DEFAULT_MAX_WORKERS`` when the process may fork safely (module docstring).
    pieces : int
        Pieces of road to detect; one piece never needs a worker.

    Returns
    -------
    int
        0 to detect in the calling process, else the number of processes to start.

    Raises
    ------
    OptionError
        For a number of workers that is not a whole number from 1 to ``MAX_WORKERS``.
    """
    explicit = workers is not None
    if workers is None:
        env = os.environ.get(ENV_WORKERS, "").strip()
        if env:
            explicit = True
            try:
                workers = int(env)
            except ValueError:
                raise OptionError(f"{ENV_WORKERS} must be a whole number of worker processes, "
                                  f"not {env!r}") from None
    if workers is not None and (isinstance(workers, bool) or not 1 <= int(workers) <= MAX_WORKERS):
        raise OptionError(f"workers must be a whole number from 1 to {MAX_WORKERS}, not {workers}")
    if not _fork_is_safe() or pieces < 2:
        return 0
    if explicit:
        n = int(workers)  # type: ignore[arg-type]
    else:
        if threading.active_count() > 1:
            return 0
        n = min(DEFAULT_MAX_WORKERS, _usable_cpus())
    n = min(n, pieces)
    return n if n >= 2 else 0


# the worker's side: the function and its context arrive by fork, not by pickling
_FN: Callable[..., Any] | None = None
_CONTEXT: Any = None


def _start_worker(fn: Callable[..., Any], context: Any) -> None:
    global _FN, _CONTEXT
    _FN, _CONTEXT = fn, context
    # Ctrl-C is the parent's to handle (it stops the pool); a handler the parent installed
    # for SIGTERM must not run here
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:  # die with the parent, even when it is killed outright
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:  # pragma: no cover - not glibc
        pass


def in_worker() -> bool:
    """True in a worker process of :class:`Workers` (its parallelism is the pool's)."""
    return _FN is not None


def _run(*args: Any) -> Any:
    assert _FN is not None
    return _FN(_CONTEXT, *args)


class Workers:
    """Apply ``fn(context, *args)`` to submitted items, on worker processes or here.

    Results come back in the order of submission. At most ``2 * workers`` items are in
    flight, so memory is bounded by a few pieces whatever the road's length.

    Parameters
    ----------
    fn : callable
        A module-level function ``fn(context, *args)``.
    context : object
        Passed to every call; inherited by the workers through the fork (not pickled).
    workers : int
        Worker processes to start; 0 or 1 runs every item in the calling process.

    Examples
    --------
    >>> with Workers(lambda c, x: c + x, 10, workers=0) as w:
    ...     for x in range(3):
    ...         w.submit(x)
    ...     list(w.drain())
    [10, 11, 12]
    """

    def __init__(self, fn: Callable[..., Any], context: Any, *, workers: int) -> None:
        self.fn = fn
        self.context = context
        self.workers = workers if workers >= 2 else 0
        self.lost = False
        self.unavailable: str | None = None  # why worker processes could not start
        self._ex: Any = None
        self._pending: deque = deque()

    def __enter__(self) -> "Workers":
        if self.workers:
            from concurrent.futures import ProcessPoolExecutor

            with warnings.catch_warnings():
                # Python >= 3.12 warns about forking a process that has threads; the
                # only ones here are native (BLAS) and fork-safe: see resolve_workers
                warnings.filterwarnings("ignore", message=".*fork.*", category=DeprecationWarning)
                try:
                    self._ex = ProcessPoolExecutor(
                        self.workers, mp_context=multiprocessing.get_context("fork"),
                        initializer=_start_worker, initargs=(self.fn, self.context),
                    )
                    # fork every worker now, before the caller starts its reading thread
                    self._ex.submit(int).result()
                except (OSError, ImportError, NotImplementedError, RuntimeError) as exc:
                    # no semaphores (a container without /dev/shm, AWS Lambda), no fork
                    # (process limits): detect here, as without workers
                    self.close()
                    self.workers = 0
                    self.unavailable = f"{type(exc).__name__}: {exc}"
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Stop the workers (pending items are dropped)."""
        self._pending.clear()
        if self._ex is not None:
            ex, self._ex = self._ex, None
            ex.shutdown(wait=True, cancel_futures=True)

    def submit(self, *args: Any) -> None:
        """Queue one item."""
        if self._ex is None:
            self._pending.append((args, None))
        else:
            self._pending.append((args, self._ex.submit(_run, *args)))

    def _result(self, args: tuple, fut: Any) -> Any:
        if fut is None:
            return self.fn(self.context, *args)
        from concurrent.futures.process import BrokenProcessPool

        try:
            return fut.result()
        except BrokenProcessPool:
            # a worker was killed (out of memory?): finish everything here
            self.lost = True
            pending = [(a, None) for a, _ in self._pending]
            self.close()
            self._pending.extend(pending)
            warnings.warn(
                "a detection worker process died (out of memory?); the remaining pieces "
                f"were detected in the measuring process (set {ENV_WORKERS}=1 to use none)",
                WorkerLostWarning, stacklevel=3,
            )
            return self.fn(self.context, *args)

    def ready(self) -> Iterator[Any]:
        """Results of the oldest items, waiting only while too many are in flight."""
        limit = 2 * self.workers
        while self._pending and (len(self._pending) > limit or self._pending[0][1] is None
                                 or self._pending[0][1].done()):
            args, fut = self._pending.popleft()
            yield self._result(args, fut)

    def drain(self) -> Iterator[Any]:
        """Results of every item still pending, in order."""
        while self._pending:
            args, fut = self._pending.popleft()
            yield self._result(args, fut)
