"""Dialogs of the main window: opened with ``show()`` / ``open()``, never ``exec()`` (platform notes)."""

from binmon.ui.dialogs.download import DownloadDialog, open_download_dialog

__all__ = ["DownloadDialog", "open_download_dialog"]
