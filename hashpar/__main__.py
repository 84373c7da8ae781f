"""``python -m hashpar``: the same as the ``hashpar`` command."""

from hashpar.cli import main

main()
