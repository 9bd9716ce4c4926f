"""``python -m queuemeasure``: the ``queuemeasure`` command."""

from .cli.main import cli

if __name__ == "__main__":  # pragma: no cover - exercised through subprocesses
    cli(prog_name="queuemeasure")
