"""``python -m queuemeasure``: the ``queuemeasure`` command."""

from .cli.main import main

if __name__ == "__main__":  # pragma: no cover
    main()
