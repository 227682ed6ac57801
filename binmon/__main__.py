"""``python -m binmon``: the same entry point as the ``binmon`` console script."""

import sys

from binmon.cli import main

if __name__ == "__main__":
    sys.exit(main())
