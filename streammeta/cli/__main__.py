"""``python -m streammeta.cli``: the ``streammeta`` command."""

from streammeta.cli.app import main

__all__: list[str] = []

if __name__ == "__main__":
    raise SystemExit(main())
