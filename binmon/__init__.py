"""binmon: a desktop Binance market monitor."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("binmon")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"
