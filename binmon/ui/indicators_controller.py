"""The chart's indicator set: what the user adds, edits, hides, reorders, saves and restores.

:class:`IndicatorController` owns the set (validated
:class:`~binmon.indicators.spec.IndicatorSpec`, in draw order, panes normalised by
:func:`~binmon.indicators.layout.arrange` so that drawing it in order always gives the same
layout), connects the :class:`~binmon.ui.panels.indicators.IndicatorsPanel`'s actions, opens
the :class:`~binmon.ui.dialogs.indicator.IndicatorDialog` (``open()``, never ``exec()``), saves
the set through ``save(list[dict])`` on every change, and keeps templates in a
:class:`~binmon.indicators.templates.TemplateStore`. Computing and drawing is its
:class:`~binmon.ui.indicator_feed.IndicatorFeed`'s job (engine, worker thread, live values in the
candles' batch). Errors become :attr:`IndicatorController.message`, never exceptions in Qt.

The composition root calls :func:`install_indicators`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QWidget

from binmon.config import MAX_INDICATORS
from binmon.indicators.catalog import function_info
from binmon.indicators.engine import Engine
from binmon.indicators.layout import arrange, has_series, resolve_panes, spec_title, start_spec
from binmon.indicators.spec import IndicatorSpec, SpecError, load_set, to_dict, validate, with_new_ids
from binmon.indicators.templates import TEMPLATES_FILE, TemplateStore
from binmon.ui.chart.api import ChartView
from binmon.ui.chart.bar_window import DEFAULT_MAX_BARS
from binmon.ui.dialogs.indicator import IndicatorDialog
from binmon.ui.indicator_feed import IndicatorFeed
from binmon.ui.panels.indicators import IndicatorsPanel, PanelItem
from binmon.ui.qt_adapter import QtMarketAdapter

__all__ = ["TEMPLATES_FILE", "IndicatorController", "install_indicators"]

log = logging.getLogger(__name__)


class IndicatorController(QObject):
    """See the module docstring. ``chart`` / ``adapter``: what the feed draws on and listens to;
    ``panel`` and ``dialog_parent`` are optional (tests drive the methods directly); ``save``
    persists the set; ``templates``: the template file's store; ``max_rows``: how many of the
    newest bars the chart holds (indicator rows are sent for those)."""

    message = Signal(str)  # one line for the user
    changed = Signal()  # the set changed (after saving)

    def __init__(
        self,
        chart: ChartView,
        adapter: QtMarketAdapter | None = None,
        *,
        panel: IndicatorsPanel | None = None,
        dialog_parent: QWidget | None = None,
        save: Callable[[list[dict[str, Any]]], None] | None = None,
        templates: TemplateStore | None = None,
        max_rows: int = DEFAULT_MAX_BARS,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.chart, self.panel, self.templates = chart, panel, templates
        self.feed = IndicatorFeed(chart, adapter, max_rows=max_rows, parent=self)
        self.feed.message.connect(self.message)
        self.feed.redrawn.connect(self._refresh_panel)
        self._dialog_parent = dialog_parent or panel
        self._save = save
        self._specs: list[IndicatorSpec] = []
        self.dialog: IndicatorDialog | None = None
        if panel is not None:
            panel.addRequested.connect(self.open_add_dialog)
            panel.editRequested.connect(self.open_edit_dialog)
            panel.removeRequested.connect(self.remove)
            panel.moveRequested.connect(self.move)
            panel.visibilityToggled.connect(self.set_visible)
            panel.saveTemplateRequested.connect(self.save_template)
            panel.applyTemplateRequested.connect(self.apply_template)
            panel.deleteTemplateRequested.connect(self.delete_template)

    # ------------------------------------------------------------ reading

    @property
    def engine(self) -> Engine | None:
        """The feed's engine (None while none is built for the series shown)."""
        return self.feed.engine

    @property
    def busy(self) -> bool:
        """True while the feed computes on its worker thread."""
        return self.feed.busy

    @property
    def specs(self) -> list[IndicatorSpec]:
        """The indicator set, in draw order."""
        return list(self._specs)

    def spec(self, spec_id: str) -> IndicatorSpec | None:
        """The spec with ``spec_id``, None if there is none."""
        return next((s for s in self._specs if s.id == spec_id), None)

    def used_colors(self) -> list[str]:
        """Colours of the indicators on the chart (a new one gets others)."""
        return [st.color for s in self._specs for st in s.styles.values()]

    def new_spec(self, function: str, **params: int | float) -> IndicatorSpec:
        """A new spec as the add dialog starts it (defaults, unused colours), with ``params``."""
        spec = start_spec(function, self.used_colors())
        return replace(spec, params={**spec.params, **params}) if params else spec

    def pane_choices(self, exclude: str | None = None) -> list[tuple[int, str]]:
        """The indicator panes in use as ``(n, "RSI 14, MACD 12 26 9")`` (what the dialog offers)."""
        names: dict[int, list[str]] = {}
        for s, pane in zip(self._specs, resolve_panes(self._specs), strict=True):
            if pane:
                names.setdefault(pane, []).append(spec_title(s) + (" (this one)" if s.id == exclude else ""))
        return [(n, ", ".join(v)) for n, v in sorted(names.items())]

    def restore(self, saved: Sequence[Mapping[str, Any]]) -> None:
        """Start from a saved set (the config's ``indicators``); bad entries are reported and skipped."""
        errors: list[str] = []
        try:
            specs = load_set(list(saved), errors)
        except SpecError as exc:
            specs, errors = [], [str(exc)]
        for e in errors:
            self._say(f"Indicators: {e}")
        self._replace_all(specs, persist=False)
        if self.templates is not None:
            for problem in self.templates.load():
                self._say(problem)
            self._refresh_templates()

    def add(self, spec: IndicatorSpec) -> bool:
        """Add ``spec`` at the end (its int pane means "the pane shown as n now"); False if invalid."""
        if len(self._specs) >= MAX_INDICATORS:
            self._say(f"At most {MAX_INDICATORS} indicators on a chart")
            return False
        checked = self._valid(spec)
        if checked is None or self.spec(checked.id) is not None:
            if checked is not None:
                self._say(f"{spec_title(checked)}: already on the chart")
            return False
        spec = checked
        groups: list[Hashable] = [*resolve_panes(self._specs), self._group(spec.pane)]
        self._specs = arrange([*self._specs, spec], groups)
        self.feed.specs = self._specs
        self.feed.compute(self._specs[-1])
        self.feed.draw(self._specs[-1])
        self._changed()
        return True

    def edit(self, spec: IndicatorSpec) -> bool:
        """Replace the spec with ``spec.id`` (keeping its place); False if invalid or unknown."""
        checked = self._valid(spec)
        if checked is None:
            return False
        spec = checked
        i = next((k for k, s in enumerate(self._specs) if s.id == spec.id), None)
        if i is None:
            self._say(f"{spec_title(spec)}: not on the chart any more")
            return False
        before, old = resolve_panes(self._specs), self._specs[i]
        groups: list[Hashable] = list(before)
        groups[i] = self._group(spec.pane)
        new = list(self._specs)
        new[i] = spec
        self._specs = arrange(new, groups)
        self.feed.specs = self._specs
        self.feed.compute(self._specs[i])
        if resolve_panes(self._specs) == before and has_series(old) == has_series(spec):
            self.feed.draw(self._specs[i])
        else:
            self.feed.redraw_all(relayout=True)
        self._changed()
        return True

    def remove(self, spec_id: str) -> None:
        """Remove an indicator (its pane goes when empty)."""
        i = next((k for k, s in enumerate(self._specs) if s.id == spec_id), None)
        if i is None:
            return
        before = resolve_panes(self._specs)
        rest = self._specs[:i] + self._specs[i + 1 :]
        groups = before[:i] + before[i + 1 :]
        self._specs = arrange(rest, groups)
        self.feed.specs = self._specs
        self.feed.drop(spec_id)
        # The page drops the pane and keeps the others' order; drawing in order may not: compare.
        kept = sorted({g for g in groups if g})
        if [kept.index(g) + 1 if g else 0 for g in groups] != resolve_panes(self._specs):
            self.feed.redraw_all(relayout=True)
        self._changed()

    def move(self, spec_id: str, delta: int) -> None:
        """Move an indicator ``delta`` places in the draw order (legend order; panes move with it)."""
        i = next((k for k, s in enumerate(self._specs) if s.id == spec_id), None)
        if i is None or not 0 <= i + delta < len(self._specs) or delta == 0:
            return
        groups: list[Hashable] = list(resolve_panes(self._specs))
        specs = list(self._specs)
        specs.insert(i + delta, specs.pop(i))
        groups.insert(i + delta, groups.pop(i))
        self._specs = arrange(specs, groups)
        self.feed.specs = self._specs
        self.feed.redraw_all(relayout=True)
        self._changed()

    def set_visible(self, spec_id: str, visible: bool) -> None:
        """Show or hide an indicator (saved with the set)."""
        i = next((k for k, s in enumerate(self._specs) if s.id == spec_id), None)
        if i is None or self._specs[i].visible == visible:
            return
        self._specs[i] = replace(self._specs[i], visible=visible)
        self.feed.specs = self._specs
        self.feed.set_visible(spec_id, visible)
        self._changed()

    def save_template(self, name: str) -> None:
        """Save the current set as template ``name`` (replacing one of that name)."""
        if self.templates is None:
            return
        try:
            self.templates.save(name, self._specs)
        except (OSError, ValueError) as exc:
            self._say(f"Template {name!r} not saved: {exc}")
            return
        self._say(f"Saved indicator template {name!r}")
        self._refresh_templates()

    def apply_template(self, name: str) -> None:
        """Replace the chart's indicators with template ``name`` (fresh ids)."""
        if self.templates is None:
            return
        errors: list[str] = []
        specs = self.templates.get(name, errors)
        for e in errors:
            self._say(f"Template {name!r}: {e}")
        if specs is None:
            return
        self._replace_all(with_new_ids(specs), persist=True)

    def delete_template(self, name: str) -> None:
        """Delete template ``name``."""
        if self.templates is None:
            return
        try:
            self.templates.delete(name)
        except (OSError, ValueError) as exc:
            self._say(f"Template {name!r} not deleted: {exc}")
        self._refresh_templates()

    def open_add_dialog(self) -> IndicatorDialog:
        """Open the add dialog (``open()``); OK adds its spec."""
        dlg = IndicatorDialog(self._dialog_parent, panes=self.pane_choices(), used_colors=self.used_colors())
        dlg.accepted.connect(lambda: self._dialog_done(dlg, self.add))
        return self._open(dlg)

    def open_edit_dialog(self, spec_id: str) -> IndicatorDialog | None:
        """Open the edit dialog of ``spec_id`` (``open()``); OK applies its spec."""
        i = next((k for k, s in enumerate(self._specs) if s.id == spec_id), None)
        if i is None:
            return None
        pane = resolve_panes(self._specs)[i]
        dlg = IndicatorDialog(
            self._dialog_parent,
            spec=self._specs[i],
            panes=self.pane_choices(exclude=spec_id),
            current_pane=pane,
        )
        dlg.accepted.connect(lambda: self._dialog_done(dlg, self.edit))
        return self._open(dlg)

    def _open(self, dlg: IndicatorDialog) -> IndicatorDialog:
        dlg.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.dialog = dlg
        dlg.finished.connect(lambda _r: setattr(self, "dialog", None) if self.dialog is dlg else None)
        dlg.open()
        return dlg

    def _dialog_done(self, dlg: IndicatorDialog, apply: Callable[[IndicatorSpec], bool]) -> None:
        spec = dlg.spec()
        if spec is not None:
            apply(spec)

    def _replace_all(self, specs: list[IndicatorSpec], persist: bool) -> None:
        self._specs = arrange(specs, resolve_panes(specs))
        self.feed.specs = self._specs
        self.feed.replace_all()
        if persist:
            self._changed()

    def _valid(self, spec: IndicatorSpec) -> IndicatorSpec | None:
        try:
            return validate(spec)
        except SpecError as exc:
            self._say(str(exc))
            return None

    def _group(self, pane: object) -> Hashable:
        """The pane group a dialog's choice means: 0 price, n an existing pane, else a new one."""
        count = max(resolve_panes(self._specs), default=0)
        if pane in ("price", 0):
            return 0
        if isinstance(pane, int) and 1 <= pane <= count:
            return pane
        return object()

    def _changed(self) -> None:
        self._refresh_panel()
        if self._save is not None:
            try:
                self._save([to_dict(s) for s in self._specs])
            except Exception as exc:
                self._say(f"Indicators not saved: {exc}")
        self.changed.emit()

    def _refresh_panel(self) -> None:
        if self.panel is None:
            return
        errors = self.feed.errors
        items = []
        for s, pane in zip(self._specs, resolve_panes(self._specs), strict=True):
            first = next(
                (st.color for st in s.styles.values() if st.visible), next(iter(s.styles.values())).color
            )
            where = "price pane" if pane == 0 else f"pane {pane}"
            tip = f"{function_info(s.function).display_name} — {where}"
            if s.id in errors:
                tip += f"\nNot computed: {errors[s.id]}"
            items.append(PanelItem(s.id, spec_title(s, source=True), first, s.visible, tip))
        self.panel.set_items(items)

    def _refresh_templates(self) -> None:
        if self.panel is not None and self.templates is not None:
            self.panel.set_templates(self.templates.names())

    def _say(self, text: str) -> None:
        log.info("%s", text)
        self.message.emit(text)

    def close(self) -> None:
        """Stop the feed's worker and flush work (app shutdown)."""
        self.feed.close()


def install_indicators(
    window_parent: QWidget,
    chart: ChartView,
    adapter: QtMarketAdapter,
    saved: Sequence[Mapping[str, Any]],
    save: Callable[[list[dict[str, Any]]], None],
    templates_path: Path,
    *,
    max_rows: int = DEFAULT_MAX_BARS,
) -> tuple[IndicatorsPanel, IndicatorController]:
    """Create the panel and the controller, wire them to ``chart`` and ``adapter``, restore ``saved``.

    ``saved``: the config's ``indicators``; ``save(list[dict])``: store the set in the config the
    app saves (the same AppConfig the app's controller holds); ``templates_path``:
    ``paths.config_dir / TEMPLATES_FILE`` (``indicator-templates.json``). Messages go to the
    window's status bar when it has one. Dock the returned panel; call ``controller.close()`` at shutdown.
    """
    panel = IndicatorsPanel()
    controller = IndicatorController(
        chart,
        adapter,
        panel=panel,
        dialog_parent=window_parent,
        save=save,
        templates=TemplateStore(templates_path),
        max_rows=max_rows,
        parent=window_parent,
    )
    status = getattr(window_parent, "statusBar", None)
    if callable(status):
        controller.message.connect(lambda text: status().showMessage(text, 8000))
    controller.restore(saved)
    return panel, controller
