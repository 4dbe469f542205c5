"""``python -m statecore``: the same as the ``statecore`` command."""

from statecore.cli import main

main()
