"""``python -m fl``: the ``sabre`` command line."""
from fl.cli import main

raise SystemExit(main())
