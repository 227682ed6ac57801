"""``python -m binmon``: the same entry point as the ``binmon`` console script.

This is also the PyInstaller bundle's entry script (binmon.spec). ``freeze_support()`` comes
first: in the frozen app a ``spawn`` worker (the backtest process pool) is the bundle's own
executable started with ``--multiprocessing-fork``, and must run the worker, not a second app.
"""

import multiprocessing
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()
    from binmon.cli import main

    sys.exit(main())
