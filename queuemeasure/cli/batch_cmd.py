"""``queuemeasure batch``: measure every row of a manifest on Dask."""

from __future__ import annotations

import logging
import sys
from typing import Any

import click

from .options import BandList, CRSParam, detector_opt, overwrite_opt, precision_opt, vector_format_opt

log = logging.getLogger("queuemeasure.batch")


@click.command("batch")
@click.argument("manifest", type=click.Path(dir_okay=False))
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="Results CSV: one row per manifest row, every JSON field of `measure`, status, error.")
@click.option("--vector", "--geojson", "vector", type=click.Path(dir_okay=False), default=None,
              help="Also write the queues of all ok rows (WGS84) as GeoJSON (.geojson), "
                   "GeoPackage (.gpkg) or FlatGeobuf (.fgb). --geojson is its old name.")
@vector_format_opt
@click.option("--plot", type=click.Path(dir_okay=False), default=None,
              help="Also plot queue length against date per site (.png, .jpg, .pdf or .svg).")
@click.option("--scheduler", metavar="ADDRESS", default=None,
              help="Use an existing Dask cluster, e.g. tcp://host:8786 (default: a local cluster).")
@click.option("--workers", type=click.IntRange(1), default=None,
              help="Local cluster: number of worker processes (default: one per core). "
                   "With --scheduler: wait for this many workers before starting.")
@click.option("--resume", is_flag=True,
              help="Keep the rows already ok in --out and measure only the others.")
@overwrite_opt
@precision_opt
@click.option("--max-gap", type=float, default=None,
              help="Default largest gap in metres for rows without one [50].")
@click.option("--direction", type=click.Choice(["both", "forward", "backward"]), default=None,
              help="Default side(s) of the head to search for rows without one [both].")
@click.option("--half-width", type=float, default=None,
              help="Default carriageway half-width in metres for rows without one [6].")
@click.option("--bands", type=BandList, default=None, help="Default bands for rows without them.")
@click.option("--road-crs", type=CRSParam, default=None, help="Default CRS of the roads' coordinates.")
@click.option("--sensitivity", type=float, default=None, help="Default detector sensitivity [1].")
@detector_opt
@click.option("--progress/--no-progress", default=None,
              help="Progress bar on stderr (default: when stderr is a terminal).")
@click.pass_context
def batch(ctx: click.Context, manifest: str, out: str, vector: str | None,
          vector_format: str | None, plot: str | None,
          scheduler: str | None, workers: int | None, resume: bool, overwrite: bool,
          precision: int | None, max_gap: float | None, direction: str | None,
          half_width: float | None, bands: Any, road_crs: Any, sensitivity: float | None,
          progress: bool | None, detector: str = "auto") -> None:
    """Measure every row of MANIFEST (CSV: site, date, tile, road, head, ...) on Dask.

    Each row is one task; a failing row is recorded with its error and the others go
    on. Results are appended to --out as they complete (a crash loses only the rows in
    flight); --resume skips the rows already ok there. Exit 0 when every row is ok,
    1 when some failed (see the error column), 2 for a bad manifest or option.
    """
    try:
        import distributed
    except ImportError:
        raise click.UsageError("batch needs Dask: pip install 'queuemeasure[dask]'") from None
    from ..batch import (ResultsLog, check_options, local_client, measure_many, plot_lengths, read_manifest,
                         write_vector)
    from ..export import check_output_path
    from ..formats import image_format, table_format
    from ..formats import vector_format as check_vector

    quiet = (ctx.obj or {}).get("quiet", False)
    check_options(max_gap=max_gap, half_width=half_width, sensitivity=sensitivity)
    if vector_format is not None and not vector:
        raise click.UsageError("--format chooses the format of --vector: give --vector too")
    table_format(out)
    if vector:
        check_vector(vector, vector_format)
    if plot:
        image_format(plot)
    rows = read_manifest(manifest)
    outputs = [o for o in (out, vector, plot) if o]
    if len(set(outputs)) < len(outputs):
        raise click.UsageError("--out, --vector and --plot must be different files")
    for o in (vector, plot):
        if o:  # derived from --out: a resumed run replaces them
            check_output_path(o, overwrite=overwrite or resume, inputs=[manifest])
    check_output_path(out, overwrite=True, inputs=[manifest])
    defaults = {"max_gap": max_gap, "direction": direction, "half_width": half_width,
                "bands": bands, "road_crs": road_crs.srs if road_crs is not None else None,
                "sensitivity": sensitivity, "detector": detector}
    defaults = {k: v for k, v in defaults.items() if v is not None}

    results = ResultsLog.open(out, resume=resume, overwrite=overwrite, precision=precision)
    done = results.done_ids()
    todo = [r for r in rows if r.id not in done]
    skipped = len(rows) - len(todo)
    show = progress if progress is not None else (sys.stderr.isatty() and not quiet)
    counts = {"ok": 0, "error": 0}
    try:
        if todo:
            with _client(distributed, scheduler, workers, local_client) as client:
                log.info("Dask dashboard: %s", client.dashboard_link)
                bar = _bar(len(todo), show)
                try:
                    for res in measure_many(todo, client, **defaults):
                        results.append(res)
                        counts[res.status] += 1
                        if res.ok:
                            log.info("row %s (%s %s): %.3f km, %s vehicles", res.id, res.site, res.date,
                                     res.result["length_km"], res.result["vehicle_count"])
                        else:
                            log.warning("row %s (%s %s): %s", res.id, res.site, res.date, res.error)
                        if bar is not None:
                            bar.set_postfix(counts, refresh=False)
                            bar.update(1)
                finally:
                    if bar is not None:
                        bar.close()
    except KeyboardInterrupt:
        results.close()
        click.echo(f"Aborted: {counts['ok'] + counts['error']} rows measured in this run are saved "
                   f"in {out}; re-run with --resume to finish.", err=True)
        ctx.exit(130)
    finally:
        results.close()
    final = results.finish(order=[r.id for r in rows])
    by_id = {r.id: r for r in final}
    mine = [by_id[r.id] for r in rows if r.id in by_id]
    if vector:
        write_vector(vector, mine, format=vector_format, overwrite=True, precision=precision)
    if plot:
        plot_lengths(plot, mine, overwrite=True)
    failed = [r for r in mine if not r.ok]
    if not quiet:
        click.echo(
            f"{len(rows)} rows: {len(mine) - len(failed)} ok, {len(failed)} failed"
            + (f" ({skipped} already done, skipped)" if skipped else "")
            + f"; wrote {out}" + "".join(f", {o}" for o in (vector, plot) if o)
        )
    if failed:
        first = failed[0]
        raise click.ClickException(
            f"{len(failed)} of {len(rows)} rows failed (first: row {first.id}: {first.error}); "
            f"see the error column of {out}"
        )


class _client:
    """Connect to ``scheduler`` or start a local cluster; close what was opened."""

    def __init__(self, distributed: Any, scheduler: str | None, workers: int | None, local: Any) -> None:
        self.distributed, self.scheduler, self.workers, self.local = distributed, scheduler, workers, local
        self._cm: Any = None

    def __enter__(self) -> Any:
        if self.scheduler is None:
            self._cm = self.local(self.workers)
            return self._cm.__enter__()
        try:
            self._cm = self.distributed.Client(self.scheduler, timeout="20s")
        except (OSError, TimeoutError, ValueError) as exc:
            raise click.ClickException(
                f"cannot connect to the Dask scheduler at {self.scheduler}: {' '.join(str(exc).split())}"
            ) from None
        client = self._cm.__enter__()
        if self.workers:
            try:
                client.wait_for_workers(self.workers, timeout=120)
            except (TimeoutError, OSError) as exc:
                client.close()
                raise click.ClickException(
                    f"fewer than {self.workers} workers joined {self.scheduler} in 120 s: {exc}") from None
        return client

    def __exit__(self, *exc: Any) -> Any:
        return self._cm.__exit__(*exc)


def _bar(total: int, show: bool) -> Any:
    if not show:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit="row", desc="measuring", file=sys.stderr, dynamic_ncols=True)
