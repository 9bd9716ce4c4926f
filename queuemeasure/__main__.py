"""``python -m queuemeasure``: the command line."""

from queuemeasure.cli.main import cli

if __name__ == "__main__":
    cli()
