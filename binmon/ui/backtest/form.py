"""The Backtest tab's form: series and range, strategy and its parameters, broker settings.

It only collects and checks values; :meth:`BacktestForm.request` gives the
:class:`~binmon.backtest.model.BacktestRequest` to run (None while something is invalid, with
the reason in :meth:`BacktestForm.error`), and :meth:`BacktestForm.download_request` the
candles it needs. ``changed`` is emitted on every edit.

Series and range reuse the download dialog's widgets and rules
(:func:`~binmon.ui.dialogs.download_check.check_download`): "To" is exclusive, so the last
candle tested is the one opening before it. The parameter fields are generated from the
strategy's :class:`~binmon.backtest.model.ParamInfo` (spin boxes bounded by its limits) and
checked with :func:`~binmon.backtest.model.validate_params`, which adds the cross rules
("fast must be < slow"). A user strategy file's parameters come from its ``params``
(read in another process, see :mod:`binmon.ui.backtest.userfile`) as free text fields.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from binmon.backtest.model import USER_STRATEGY, BacktestRequest, ParamInfo, StrategyInfo, validate_params
from binmon.core.intervals import DAY_MS, MINUTE_MS, interval_ms
from binmon.core.models import SymbolInfo
from binmon.history.download import DownloadRequest
from binmon.indicators.spec import IndicatorSpec
from binmon.ui.backtest.condition import ConditionField
from binmon.ui.backtest.fields import FormSymbolEdit, ParamField, money_box, user_param_infos
from binmon.ui.dialogs.download_check import check_download
from binmon.ui.dialogs.download_parts import (
    MIN_DATE_MS,
    error_colour,
    make_date_edit,
    note_colour,
    to_qdt,
    wall_ms,
)
from binmon.ui.widgets.symbol_picker import IntervalPicker

LOAD_FILE = "__load_file__"
#: Quick ranges (label, days).
RANGE_PRESETS: tuple[tuple[str, int], ...] = (("7 d", 7), ("30 d", 30), ("1 y", 365))


class BacktestForm(QWidget):
    """See the module docstring. ``strategies``: the built-ins (``strategies()``); ``symbols``:
    the exchange's symbols, read when needed (empty until loaded: any well-formed symbol
    passes); ``now_ms``: the server's clock; ``pick``: the initial (symbol, interval)."""

    changed = Signal()
    #: The user picked "Load strategy file…": the tab asks for a file (a dialog it owns).
    loadFileRequested = Signal()

    def __init__(
        self,
        strategies: Sequence[StrategyInfo],
        pick: tuple[str, str],
        *,
        symbols: Callable[[], Sequence[SymbolInfo]] = tuple,
        indicators: Callable[[], Sequence[IndicatorSpec]] = tuple,
        now_ms: Callable[[], int] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._strategies = {s.name: s for s in strategies}
        self._symbols = symbols
        self._indicators = indicators
        self._infos = {s.symbol: s for s in symbols()}
        self._now = now_ms or wall_ms
        self._shown = ""
        self._fields: dict[str, ParamField] = {}
        self._user_file: str | None = None
        self._user_defaults: dict[str, Any] = {}
        self._error = ""
        self._request: BacktestRequest | None = None
        self._download: DownloadRequest | None = None
        self._building = False
        self._build(pick)
        self._revalidate()

    # ------------------------------------------------------------------ construction

    def _build(self, pick: tuple[str, str]) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)

        data = QGroupBox("Data", self)
        form = QFormLayout(data)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.symbol_edit = FormSymbolEdit(list(self._infos.values()), self)
        self.symbol_edit.focused.connect(self.refresh_symbols)
        self.symbol_edit.setObjectName("bt_symbol")
        self.symbol_edit.setText(pick[0])
        self.interval_box = IntervalPicker(self)
        self.interval_box.set_interval(pick[1])
        series = QHBoxLayout()
        series.addWidget(self.symbol_edit, 1)
        series.addWidget(self.interval_box)
        form.addRow("Symbol", series)
        self.start_edit = make_date_edit(self, "The first candle tested opens at or after this time (UTC)")
        self.end_edit = make_date_edit(self, "Test the candles opening before this time (UTC)")
        form.addRow("From", self.start_edit)
        form.addRow("To", self.end_edit)
        presets = QHBoxLayout()
        self.preset_buttons: dict[str, QPushButton] = {}
        for label, days in RANGE_PRESETS:
            button = QPushButton(label, self)
            button.setAutoDefault(False)
            button.setMinimumWidth(44)  # the style's 80 px minimum would widen the form
            button.clicked.connect(lambda _=False, d=days: self.apply_preset(d))
            presets.addWidget(button)
            self.preset_buttons[label] = button
        self.stored_button = QPushButton("Stored range", self)
        self.stored_button.setToolTip("The range of this series already in the local store")
        presets.addWidget(self.stored_button)
        form.addRow(presets)  # the whole width: four buttons do not fit in the field column
        layout.addWidget(data)

        strat = QGroupBox("Strategy", self)
        sform = QVBoxLayout(strat)
        self.strategy_box = QComboBox(self)
        self.strategy_box.setObjectName("bt_strategy")
        for s in self._strategies.values():
            self.strategy_box.addItem(s.title, s.name)
        self.strategy_box.addItem("Load strategy file…", LOAD_FILE)
        sform.addWidget(self.strategy_box)
        self.description = QLabel(self)
        self.description.setWordWrap(True)
        sform.addWidget(self.description)
        self.params_form = QFormLayout()
        self.params_form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        sform.addLayout(self.params_form)
        layout.addWidget(strat)

        broker = QGroupBox("Broker", self)
        bform = QFormLayout(broker)
        bform.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.cash_box = money_box(self, 10_000.0, 0.01, 1e15, 2, "Starting cash, in the quote asset")
        self.commission_box = money_box(
            self, 0.1, 0.0, 49.0, 4, "Per side, of the traded value (Binance spot taker: 0.1 %)"
        )
        self.commission_box.setSuffix(" %")
        self.slippage_box = money_box(self, 0.0, 0.0, 49.0, 4, "Fills move against you by this much")
        self.slippage_box.setSuffix(" %")
        self.sizing_box = QComboBox(self)
        self.sizing_box.addItem("% of equity", "percent")
        self.sizing_box.addItem("Fixed size", "fixed")
        self.size_box = money_box(
            self, 95.0, 0.0, 1e12, 2, "Percent of equity per entry, or base-asset units"
        )
        sizing = QHBoxLayout()
        sizing.addWidget(self.sizing_box)
        sizing.addWidget(self.size_box, 1)
        self.direction_box = QComboBox(self)
        self.direction_box.addItem("Long only", "long")
        self.direction_box.addItem("Long & short", "long_short")
        bform.addRow("Cash", self.cash_box)
        bform.addRow("Commission", self.commission_box)
        bform.addRow("Slippage", self.slippage_box)
        bform.addRow("Size", sizing)
        bform.addRow("Direction", self.direction_box)
        layout.addWidget(broker)

        self.message_label = QLabel(self)
        self.message_label.setObjectName("bt_message")
        self.message_label.setWordWrap(True)
        layout.addWidget(self.message_label)
        layout.addStretch(1)

        for box in (self.cash_box, self.commission_box, self.slippage_box, self.size_box):
            box.setMinimumWidth(70)  # their huge ranges would otherwise widen the whole form
        now = self._now() // MINUTE_MS * MINUTE_MS
        self.set_range(max(MIN_DATE_MS, now - 30 * DAY_MS), now)
        self._show_strategy(self.strategy_box.currentData())
        self.symbol_edit.textChanged.connect(self._revalidate)
        self.interval_box.currentTextChanged.connect(self._revalidate)
        self.start_edit.dateTimeChanged.connect(self._revalidate)
        self.end_edit.dateTimeChanged.connect(self._revalidate)
        self.strategy_box.activated.connect(self._strategy_chosen)
        for w in (self.cash_box, self.commission_box, self.slippage_box, self.size_box):
            w.valueChanged.connect(self._revalidate)
        self.sizing_box.currentIndexChanged.connect(self._sizing_changed)
        self.direction_box.currentIndexChanged.connect(self._revalidate)

    # ------------------------------------------------------------------ public API

    def request(self) -> BacktestRequest | None:
        """The run the form describes; None while invalid (see :meth:`error`)."""
        return self._request

    def download_request(self) -> DownloadRequest | None:
        """The candles the run needs, as a download request (None while invalid)."""
        return self._download

    def error(self) -> str:
        """Why the form is invalid ("" when valid)."""
        return self._error

    def refresh_symbols(self) -> None:
        """Read the exchange's symbols again (they arrive after the tab is built)."""
        infos = list(self._symbols())
        if len(infos) != len(self._infos):
            self._infos = {s.symbol: s for s in infos}
            self.symbol_edit.set_infos(infos)
            self._revalidate()

    def set_series(self, symbol: str, interval: str) -> None:
        """Fill in the symbol and interval."""
        self.symbol_edit.setText(symbol)
        self.interval_box.set_interval(interval)

    def set_range(self, start_ms: int, to_ms: int) -> None:
        """From / To (ms UTC, To exclusive), as if typed."""
        self.start_edit.setDateTime(to_qdt(start_ms))
        self.end_edit.setDateTime(to_qdt(to_ms))

    def apply_preset(self, days: int) -> None:
        """The last ``days`` days up to now (to the minute)."""
        now = self._now() // MINUTE_MS * MINUTE_MS
        self.set_range(max(MIN_DATE_MS, now - days * DAY_MS), now)

    def strategies(self) -> list[str]:
        """The strategy names offered (built-ins, then a loaded file's ``"file"``)."""
        return [self.strategy_box.itemData(i) for i in range(self.strategy_box.count())]

    def set_strategy(self, name: str) -> None:
        """Choose a built-in by name (or ``"file"`` once a file is loaded); ValueError if unknown."""
        i = self.strategy_box.findData(name)
        if i < 0 or name == LOAD_FILE:
            raise ValueError(f"unknown strategy {name!r}")
        self.strategy_box.setCurrentIndex(i)
        self._show_strategy(name)

    def strategy(self) -> str:
        """The chosen strategy's name."""
        return str(self.strategy_box.currentData())

    def set_user_strategy(self, path: str, defaults: Mapping[str, Any], class_name: str = "") -> None:
        """Offer the strategy file ``path`` (its ``params`` are ``defaults``) and choose it."""
        self._user_file = path
        self._user_defaults = dict(defaults)
        title = f"File: {Path(path).name}" + (f" ({class_name})" if class_name else "")
        i = self.strategy_box.findData(USER_STRATEGY)
        if i < 0:
            i = self.strategy_box.count() - 1  # before "Load strategy file…"
            self.strategy_box.insertItem(i, title, USER_STRATEGY)
        else:
            self.strategy_box.setItemText(i, title)
        self.set_strategy(USER_STRATEGY)

    def param_fields(self) -> dict[str, ParamField]:
        """The generated parameter fields by parameter name."""
        return dict(self._fields)

    def set_params(self, params: Mapping[str, Any]) -> None:
        """Fill in parameter values (names the strategy does not have are ignored)."""
        for name, value in params.items():
            if name in self._fields:
                self._fields[name].set_value(value)

    def params(self) -> dict[str, Any]:
        """The parameter values as entered."""
        return {name: f.value() for name, f in self._fields.items()}

    def load(self, req: BacktestRequest) -> None:
        """Show ``req`` in the form (re-running a recent run)."""
        self.set_series(req.symbol, req.interval)
        self.set_range(req.start_ms, req.end_ms + interval_ms(req.interval))
        if req.strategy == USER_STRATEGY and req.strategy_file:
            self.set_user_strategy(req.strategy_file, req.params)
        else:
            self.set_strategy(req.strategy)
        self.set_params(req.params)
        self.cash_box.setValue(req.cash)
        self.commission_box.setValue(req.commission * 100)
        self.slippage_box.setValue(req.slippage * 100)
        self.sizing_box.setCurrentIndex(self.sizing_box.findData(req.sizing))
        self.size_box.setValue(req.size)
        self.direction_box.setCurrentIndex(self.direction_box.findData(req.direction))

    def set_editable(self, editable: bool) -> None:
        """Lock the fields while a run is in progress."""
        for child in self.findChildren(QWidget):
            if isinstance(
                child, QLineEdit | QComboBox | QSpinBox | QDoubleSpinBox | QPushButton
            ) or child in (
                self.start_edit,
                self.end_edit,
            ):
                child.setEnabled(editable)

    # ------------------------------------------------------------------ internals

    def _strategy_chosen(self, index: int) -> None:
        name = self.strategy_box.itemData(index)
        if name == LOAD_FILE:
            # Back to what was chosen: the file only counts once it has been read.
            back = self.strategy_box.findData(self._shown)
            self.strategy_box.setCurrentIndex(max(0, back))
            self.loadFileRequested.emit()
            return
        self._show_strategy(name)

    def _show_strategy(self, name: str) -> None:
        self._shown = name
        while self.params_form.rowCount():
            self.params_form.removeRow(0)
        self._fields = {}
        if name == USER_STRATEGY:
            infos: tuple[ParamInfo, ...] = user_param_infos(self._user_defaults)
            self.description.setText(
                f"Your strategy file {self._user_file}. Parameters are its class's params "
                "(numbers or JSON values)."
                if self._user_file
                else ""
            )
        else:
            info = self._strategies[name]
            infos = info.params
            self.description.setText(info.description)
        user = name == USER_STRATEGY
        for p in infos:
            f = ParamField(p, self, condition=None if user else self._condition_field)
            f.connect(self._revalidate)
            self.params_form.addRow(p.title or p.name, f.widget)
            self._fields[p.name] = f
        self._revalidate()

    def _condition_field(self, info: ParamInfo) -> QWidget:
        def series() -> tuple[str, str]:
            return self.symbol_edit.text().strip().upper(), self.interval_box.interval()

        return ConditionField(
            info.default,
            title=info.title or info.name,
            series=series,
            indicators=self._indicators,
            parent=self,
        )

    def _sizing_changed(self) -> None:
        percent = self.sizing_box.currentData() == "percent"
        self.size_box.setSuffix(" %" if percent else "")
        self.size_box.setDecimals(2 if percent else 8)  # base-asset units can be tiny (0.0001 BTC)
        if percent and self.size_box.value() > 100:
            self.size_box.setValue(95.0)
        self._revalidate()

    def _revalidate(self) -> None:
        self._request, self._download, self._error = None, None, ""
        check = check_download(
            self.symbol_edit.text(),
            self._infos,
            self.interval_box.interval(),
            self.start_edit.dateTime().toMSecsSinceEpoch(),
            self.end_edit.dateTime().toMSecsSinceEpoch(),
            self._now(),
        )
        error = check.error
        if not error and check.request is not None:
            error = self._build_request(check.request)
        self._error = error
        self._show_message(error, error=bool(error))
        self.changed.emit()

    def _build_request(self, dl: DownloadRequest) -> str:
        """Set the request (and the download) from the fields; the error text when invalid."""
        name = self.strategy()
        params = self.params()
        if name != USER_STRATEGY:
            try:
                params = validate_params(name, params)
            except ValueError as exc:
                return f"Parameter: {exc}"
        step = interval_ms(dl.key.interval)
        last = (self._now() if dl.end_ms is None else dl.end_ms) // step * step
        # The newest candle tested must be closed: with "To" in the future, the last one
        # whose close is past is the one before the open candle.
        if dl.end_ms is None:
            last -= step
        start = -(-dl.start_ms // step) * step
        if last < start:
            return "No closed candle in this range; widen it"
        try:
            self._request = BacktestRequest(
                symbol=dl.key.symbol,
                interval=dl.key.interval,
                start_ms=start,
                end_ms=last,
                strategy=name,
                params=params,
                cash=self.cash_box.value(),
                commission=self.commission_box.value() / 100,
                slippage=self.slippage_box.value() / 100,
                sizing=self.sizing_box.currentData(),
                size=self.size_box.value(),
                direction=self.direction_box.currentData(),
                strategy_file=self._user_file if name == USER_STRATEGY else None,
            )
        except ValueError as exc:
            return str(exc)[:1].upper() + str(exc)[1:]
        self._download = DownloadRequest(dl.key, start, last)
        return ""

    def _show_message(self, text: str, *, error: bool) -> None:
        colour = error_colour(self) if error else note_colour(self)
        self.message_label.setStyleSheet(f"color: {colour};")
        self.message_label.setText(("⚠ " + text) if error and text else text)
