"""``python -m app.emulator``: the same as ``python -m app emulator``."""

from __future__ import annotations

import sys

from . import main

if __name__ == "__main__":
    sys.exit(main())
