"""``python -m queuemeasure``: the same commands as the ``queuemeasure`` script."""

from .cli.main import cli

if __name__ == "__main__":  # pragma: no cover
    cli(prog_name="queuemeasure")
