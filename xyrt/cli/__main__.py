"""``python -m xyrt.cli``: the ``xyrt`` command."""

import sys

from xyrt.cli import main

sys.exit(main())
