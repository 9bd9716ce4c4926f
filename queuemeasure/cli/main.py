"""The ``queuemeasure`` command (also ``rio queue``): a thin layer over the library.

Every error of the :class:`~queuemeasure.errors.QueueMeasureError` family becomes one
line on stderr and exit code 2 (bad input or usage), except
:class:`~queuemeasure.errors.RemoteError` (a server failed: exit 1); anything unexpected
becomes one line and exit code 1. ``-v`` shows the traceback.
"""

from __future__ import annotations

import logging
import sys
import warnings
from typing import Any

import click

from .._version import __version__

EXIT_INPUT = 2
EXIT_FAILURE = 1
EXIT_INTERRUPTED = 130


def _versions() -> str:
    import platform

    import pyproj
    import rasterio
    import shapely

    return (
        f"queuemeasure {__version__} (Python {platform.python_version()}; "
        f"rasterio {rasterio.__version__}, GDAL {rasterio.__gdal_version__}; "
        f"pyproj {pyproj.__version__}, PROJ {pyproj.proj_version_str}; "
        f"shapely {shapely.__version__}, GEOS {shapely.geos_version_string})"
    )


def _print_version(ctx: click.Context, param: Any, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(_versions())
        ctx.exit()


class _OneLineUsageError(click.UsageError):
    """A usage error shown as one line (click's default adds the usage and a hint line)."""

    def show(self, file: Any = None) -> None:
        hint = f" (see '{self.ctx.command_path} --help')" if self.ctx is not None else ""
        click.echo(f"Error: {self.format_message()}{hint}", err=True)


def _one_line(exc: click.UsageError) -> click.UsageError:
    if isinstance(exc, (_OneLineUsageError, click.exceptions.NoArgsIsHelpError)):
        return exc
    return _OneLineUsageError(exc.format_message(), exc.ctx)


class _Group(click.Group):
    """A group that turns library errors into one-line messages and exit codes."""

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        try:
            return super().make_context(*args, **kwargs)
        except click.UsageError as exc:
            raise _one_line(exc) from None

    def invoke(self, ctx: click.Context) -> Any:
        from ..errors import QueueMeasureError, RemoteError

        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            raise _one_line(exc) from None
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except RemoteError as exc:  # a server failed: not the user's input
            self._fail(ctx, exc, EXIT_FAILURE)
        except QueueMeasureError as exc:
            self._fail(ctx, exc, EXIT_INPUT)
        except KeyboardInterrupt:
            # outputs are written to a temporary file and renamed: nothing partial is left
            click.echo("Error: interrupted; no partial output was left behind", err=True)
            ctx.exit(EXIT_INTERRUPTED)
        except MemoryError as exc:
            self._fail(ctx, exc, EXIT_FAILURE, "out of memory")
        except Exception as exc:  # noqa: BLE001 - the CLI's last line of defence
            self._fail(ctx, exc, EXIT_FAILURE, f"internal error ({type(exc).__name__})")

    @staticmethod
    def _fail(ctx: click.Context, exc: BaseException, code: int, prefix: str = "") -> None:
        verbose = (ctx.obj or {}).get("verbose", 0)
        if verbose:
            import traceback

            traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
        msg = " ".join(str(exc).split()) or type(exc).__name__
        if prefix:
            msg = f"{prefix}: {msg}" + ("" if verbose else " (run with -v for details)")
        click.echo(f"Error: {msg}", err=True)
        ctx.exit(code)


def _setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING - 10 * verbose if not quiet else logging.ERROR
    logging.basicConfig(level=max(level, logging.DEBUG), format="%(levelname)s: %(message)s", stream=sys.stderr)
    # GDAL's own messages (CPLE_* warnings and errors, logged by rasterio) only with -v:
    # a failure is reported once, as the one "Error:" line.
    logging.getLogger("rasterio").setLevel(logging.NOTSET if verbose else logging.CRITICAL + 1)

    def show(message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
        if not quiet:
            click.echo(f"Warning: {' '.join(str(message).split())}", err=True)

    warnings.showwarning = show  # type: ignore[assignment]


# Named "queue": rio's plugin loader registers a command under its click name, so this
# is what makes ``rio queue ...`` exist (the console script is still ``queuemeasure``).
@click.group("queue", cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_print_version,
              help="Show the versions of queuemeasure, GDAL, PROJ and GEOS and exit.")
@click.option("-v", "--verbose", count=True, help="More logging; tracebacks on errors.")
@click.option("-q", "--quiet", is_flag=True, help="Only errors on stderr.")
@click.pass_context
def cli(ctx: click.Context, verbose: int, quiet: bool) -> None:
    """Measure vehicle queues along roads in satellite and aerial GeoTIFFs.

    Lengths are geodesic (true ground metres on the WGS84 ellipsoid), whatever the
    tile's CRS; coordinates in and out are WGS84 lon,lat.
    """
    ctx.ensure_object(dict)
    ctx.obj["verbose"] = verbose
    ctx.obj["quiet"] = quiet
    _setup_logging(verbose, quiet)


from .batch_cmd import batch  # noqa: E402
from .info_cmd import info  # noqa: E402
from .measure_cmd import measure  # noqa: E402

cli.add_command(measure)
cli.add_command(info)
cli.add_command(batch)

from .synth_cmd import synth  # noqa: E402
from .trace_cmd import trace  # noqa: E402

cli.add_command(synth)
cli.add_command(trace)

from .road_cmd import road  # noqa: E402

cli.add_command(road)
from .check_cmd import check  # noqa: E402
from .search_cmd import search  # noqa: E402

cli.add_command(search)
cli.add_command(check)


def main() -> None:  # pragma: no cover
    cli(prog_name="queuemeasure")
