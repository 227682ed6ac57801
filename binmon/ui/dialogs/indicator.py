"""The add / edit indicator dialog: pick a TA-Lib function, set it up, get an :class:`IndicatorSpec`.

Add mode: a search box over a list grouped as TA-Lib groups its functions (functions that need
more than candles, like MAVP, are left out); typing filters it ("rsi", "bollinger", "macd"),
the best hit is selected and its form shown, Enter moves to the first parameter, Enter again
(or OK) adds it, Esc cancels. Edit mode shows the form of the given spec only.

The form is generated from the catalogue: one spin box per parameter (arrows and the wheel stay
in TA-Lib's range; typing may go outside it and is then reported), an MA type combo, the price
source where the function takes one price, the pane, per-output style (colour, width, kind,
shown) and guide lines. Every change is checked with :func:`~binmon.indicators.spec.validate`:
the one-line message shows under the form and OK stays disabled while the form is invalid.

Use :meth:`QDialog.open` (never ``exec`` in async code) and read :meth:`IndicatorDialog.spec`
on ``accepted``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from PySide6.QtCore import QEvent, QLocale, QObject, QSize, Qt
from PySide6.QtGui import QColor, QIcon, QKeyEvent, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QColorDialog,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QScrollArea,
    QSpinBox,
    QToolButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from binmon.indicators.catalog import (
    STYLE_KINDS,
    FunctionInfo,
    ParamInfo,
    catalog,
    groups,
    ma_type_name,
    search,
)
from binmon.indicators.layout import number_text, parse_guides, start_spec
from binmon.indicators.spec import (
    SOURCES,
    IndicatorSpec,
    OutputStyle,
    Pane,
    SpecError,
    validate,
)

NAME_ROLE = Qt.ItemDataRole.UserRole + 1
_INT_LIMIT = 2_000_000_000  # what a QSpinBox (int32) accepts comfortably
_FLOAT_LIMIT = 1e15
_ERROR_STYLE = "color:#EF5350;"


class ParamSpin(QSpinBox):
    """An int parameter: arrows and wheel stay within TA-Lib's range, typing may leave it
    (the dialog reports it instead of silently refusing the key)."""

    def __init__(self, p: ParamInfo) -> None:
        super().__init__()
        self.param = p
        self.setLocale(QLocale.c())
        self.setRange(-_INT_LIMIT, _INT_LIMIT)
        self.setValue(int(p.default))
        self.setMaximumWidth(130)

    def stepBy(self, steps: int) -> None:
        """Step, clamped to the parameter's range."""
        v = self.value() + steps * self.singleStep()
        lo, hi = self.param.minimum, self.param.maximum
        v = max(v, int(lo)) if lo is not None else v
        v = min(v, int(hi)) if hi is not None else v
        self.setValue(v)
        self.selectAll()


class ParamDoubleSpin(QDoubleSpinBox):
    """A float parameter, shown without trailing zeros; same range rules as :class:`ParamSpin`."""

    def __init__(self, p: ParamInfo) -> None:
        super().__init__()
        self.param = p
        self.setLocale(QLocale.c())
        self.setDecimals(10)
        self.setRange(-_FLOAT_LIMIT, _FLOAT_LIMIT)
        self.setSingleStep(0.1 if abs(float(p.default)) >= 0.5 else 0.01)
        self.setValue(float(p.default))
        self.setMaximumWidth(130)

    def textFromValue(self, value: float) -> str:
        """No trailing zeros."""
        return number_text(value)

    def stepBy(self, steps: int) -> None:
        """Step, clamped to the parameter's range."""
        v = round(self.value() + steps * self.singleStep(), 10)
        lo, hi = self.param.minimum, self.param.maximum
        v = max(v, float(lo)) if lo is not None else v
        v = min(v, float(hi)) if hi is not None else v
        self.setValue(v)
        self.selectAll()


def range_text(p: ParamInfo) -> str:
    """``"2 to 100000"``, ``"at least 0"``, ... for tool tips."""
    lo, hi = p.minimum, p.maximum
    if lo is not None and hi is not None:
        return f"{number_text(lo)} to {number_text(hi)}"
    if lo is not None:
        return f"at least {number_text(lo)}"
    return f"at most {number_text(hi)}" if hi is not None else "any number"


def swatch(color: str, size: int = 14) -> QIcon:
    """A filled square of ``color``."""
    pix = QPixmap(size, size)
    pix.fill(QColor(color))
    return QIcon(pix)


class _OutputRow:
    """The style widgets of one output."""

    def __init__(self, dialog: IndicatorDialog, name: str, style: OutputStyle, integer: bool) -> None:
        self.name, self.color = name, style.color
        self.color_button = QToolButton()
        self.color_button.setObjectName(f"color_{name}")
        self.color_button.setAccessibleName(f"{name} colour")
        self.color_button.setToolTip("Choose the colour")
        self.color_button.setIconSize(QSize(14, 14))
        self.color_button.clicked.connect(lambda _=False: dialog.choose_color(self))
        self.width = QSpinBox()
        self.width.setObjectName(f"width_{name}")
        self.width.setRange(1, 4)
        self.width.setValue(style.width)
        self.width.setSuffix(" px")
        self.width.setAccessibleName(f"{name} width")
        self.kind = QComboBox()
        self.kind.setObjectName(f"kind_{name}")
        self.kind.setAccessibleName(f"{name} style")
        kinds = [k for k in STYLE_KINDS if k != "markers" or integer]
        if style.kind not in kinds:
            kinds.append(style.kind)
        for k in kinds:
            self.kind.addItem(k, k)
        self.kind.setCurrentIndex(kinds.index(style.kind))
        self.shown = QCheckBox("shown")
        self.shown.setObjectName(f"visible_{name}")
        self.shown.setChecked(style.visible)
        self.set_color(style.color)
        for sig in (self.width.valueChanged, self.kind.currentIndexChanged, self.shown.toggled):
            sig.connect(dialog.revalidate)

    def set_color(self, color: str) -> None:
        self.color = color
        self.color_button.setIcon(swatch(color))
        self.color_button.setText(color)

    def style(self) -> OutputStyle:
        return OutputStyle(self.color, self.width.value(), self.kind.currentData(), self.shown.isChecked())


class IndicatorDialog(QDialog):
    """Add an indicator (``spec`` None) or edit ``spec``.

    ``panes``: the indicator panes in use as ``(n, label)``, offered as "existing pane n";
    ``current_pane``: where the edited indicator is (0 price, n >= 1), preselected;
    ``used_colors``: colours already on the chart (a new indicator gets other palette colours).
    """

    def __init__(
        self,
        parent: QWidget | None = None,
        *,
        spec: IndicatorSpec | None = None,
        panes: Sequence[tuple[int, str]] = (),
        current_pane: int | None = None,
        used_colors: Iterable[str] = (),
    ) -> None:
        super().__init__(parent)
        self.setObjectName("indicatorDialog")
        self._edit = spec
        self._panes = list(panes)
        self._current_pane = current_pane
        self._used = list(used_colors)
        self._info: FunctionInfo | None = None
        self._base: IndicatorSpec | None = None
        self._result: IndicatorSpec | None = None
        self._params: dict[str, QWidget] = {}
        self._outputs: list[_OutputRow] = []
        self.color_dialog: QColorDialog | None = None
        self.source: QComboBox | None = None
        self.pane = QComboBox()
        self.guides = QLineEdit()
        self.setWindowTitle("Add indicator" if spec is None else f"Edit {spec.function}")

        self.search = QLineEdit()
        self.search.setObjectName("search")
        self.search.setPlaceholderText("Search: rsi, bollinger, macd…")
        self.search.setClearButtonEnabled(True)
        self.search.setAccessibleName("Search indicators")
        self.search.textChanged.connect(self._filter)
        self.search.installEventFilter(self)
        self.functions = QTreeWidget()
        self.functions.setObjectName("functions")
        self.functions.setHeaderHidden(True)
        self.functions.setColumnCount(2)
        self.functions.setRootIsDecorated(False)
        self.functions.setAccessibleName("Indicators")
        self.functions.currentItemChanged.connect(self._current_changed)
        self.functions.itemDoubleClicked.connect(lambda *_: self._pick())
        self.functions.installEventFilter(self)
        left = QWidget()
        left_lay = QVBoxLayout(left)
        left_lay.setContentsMargins(0, 0, 0, 0)
        left_lay.addWidget(self.search)
        left_lay.addWidget(self.functions, 1)
        left.setMinimumWidth(260)
        left.setVisible(spec is None)

        self.heading = QLabel("Pick an indicator on the left.")
        self.heading.setObjectName("heading")
        self.heading.setWordWrap(True)
        self.heading.setTextFormat(Qt.TextFormat.PlainText)
        self.form_area = QScrollArea()
        self.form_area.setWidgetResizable(True)
        self.form_area.setMinimumWidth(500)
        self.form_area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.message = QLabel("")
        self.message.setObjectName("message")
        self.message.setStyleSheet(_ERROR_STYLE)
        self.message.setWordWrap(True)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok.setText("Add" if spec is None else "OK")
        self.ok.setDefault(True)
        self.ok.setEnabled(False)
        self.buttons.accepted.connect(self._accept)
        self.buttons.rejected.connect(self.reject)
        right = QVBoxLayout()
        right.addWidget(self.heading)
        right.addWidget(self.form_area, 1)
        right.addWidget(self.message)
        right.addWidget(self.buttons)
        lay = QHBoxLayout(self)
        lay.addWidget(left, 2)
        lay.addLayout(right, 3)
        self.resize(880 if spec is None else 540, 580)

        if spec is None:
            self._filter("")
            self.search.setFocus()
        else:
            self._show(spec.function)

    # ------------------------------------------------------------ results

    def spec(self) -> IndicatorSpec | None:
        """The validated spec of the form (after OK: what was accepted), None while invalid."""
        if self._result is not None:
            return self._result
        try:
            return validate(self._form_spec())
        except (SpecError, ValueError):
            return None

    @property
    def function(self) -> str | None:
        """The TA-Lib function the form is for."""
        return self._info.name if self._info is not None else None

    def param_widget(self, name: str) -> QWidget:
        """The input of parameter ``name`` (KeyError if the form has none)."""
        return self._params[name]

    def output_row(self, name: str) -> _OutputRow:
        """The style widgets of output ``name``."""
        return next(r for r in self._outputs if r.name == name)

    # ------------------------------------------------------------ the list

    def _filter(self, text: str) -> None:
        tree = self.functions
        tree.blockSignals(True)
        tree.clear()
        if text.strip():
            hits = [i for i in search(text) if i.chartable]
            order: dict[str, list[FunctionInfo]] = {}
            for info in hits:  # groups ordered by their best hit, hits by rank
                order.setdefault(info.group, []).append(info)
        else:
            cat = catalog()
            order = {g: [cat[n] for n in names if cat[n].chartable] for g, names in groups().items()}
        first: QTreeWidgetItem | None = None
        for group, infos in order.items():
            if not infos:
                continue
            head = QTreeWidgetItem(tree, [group])
            head.setFlags(Qt.ItemFlag.ItemIsEnabled)
            font = head.font(0)
            font.setBold(True)
            head.setFont(0, font)
            head.setFirstColumnSpanned(True)
            for info in infos:
                item = QTreeWidgetItem(head, [info.name, info.display_name])
                item.setData(0, NAME_ROLE, info.name)
                item.setToolTip(1, info.display_name)
                first = first or item
            head.setExpanded(True)
        tree.resizeColumnToContents(0)
        tree.blockSignals(False)
        if text.strip() and first is not None:
            tree.setCurrentItem(first)
        elif text.strip():
            self._clear_form(f"No indicator matches {text.strip()!r}.")

    def _current_changed(self, item: QTreeWidgetItem | None, _prev: QTreeWidgetItem | None) -> None:
        name = item.data(0, NAME_ROLE) if item is not None else None
        if name and name != self.function:
            self._show(name)

    def _pick(self) -> None:
        """Enter on the search or the list: take the current function and go to its first field."""
        item = self.functions.currentItem()
        if item is None or not item.data(0, NAME_ROLE):
            return
        self._show(item.data(0, NAME_ROLE))
        first = next(iter(self._params.values()), None)
        target = first if first is not None else self.ok
        target.setFocus(Qt.FocusReason.TabFocusReason)
        if isinstance(first, QSpinBox | QDoubleSpinBox):
            first.selectAll()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Keyboard: Enter picks (search, list), Down goes from the search to the list."""
        if event.type() == QEvent.Type.KeyPress and isinstance(event, QKeyEvent):
            key = event.key()
            if watched in (self.search, self.functions) and key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
                self._pick()
                return True
            if watched is self.search and key == Qt.Key.Key_Down:
                self.functions.setFocus()
                head = self.functions.topLevelItem(0)
                first = head.child(0) if head is not None else None
                if self.functions.currentItem() is None and first is not None:
                    self.functions.setCurrentItem(first)
                return True
        return super().eventFilter(watched, event)

    # ------------------------------------------------------------ the form

    def _clear_form(self, heading: str) -> None:
        self._info, self._base = None, None
        self._params, self._outputs, self.source = {}, [], None
        self.heading.setText(heading)
        old = self.form_area.takeWidget()
        if old is not None:
            old.deleteLater()
        self.message.setText("")
        self.ok.setEnabled(False)

    def _show(self, function: str) -> None:
        base = self._edit if self._edit is not None else start_spec(function, self._used)
        self._clear_form("")
        info = catalog()[base.function]
        self._info, self._base = info, base
        where = "the price pane" if info.overlay else "its own pane"
        self.heading.setText(f"{info.name} — {info.display_name}\n{info.group}; drawn on {where} by default.")
        body = QWidget()
        form = QFormLayout(body)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.FieldsStayAtSizeHint)
        for p in info.params:
            w = self._param_input(p, base.params.get(p.name, p.default))
            w.setObjectName(f"param_{p.name}")
            label = QLabel(p.display_name)
            label.setBuddy(w)
            tip = f"{p.help}\n{p.name}: {range_text(p)}" if p.help else f"{p.name}: {range_text(p)}"
            label.setToolTip(tip)
            w.setToolTip(tip)
            form.addRow(label, w)
            self._params[p.name] = w
        if not info.params:
            form.addRow(QLabel("No parameters."))
        if info.takes_single_price:
            self.source = QComboBox()
            self.source.setObjectName("source")
            for s in SOURCES:
                self.source.addItem(s, s)
            self.source.setCurrentIndex(SOURCES.index(base.source))
            self.source.currentIndexChanged.connect(self.revalidate)
            form.addRow("Price", self.source)
        self.pane = self._pane_combo(base.pane)
        form.addRow("Pane", self.pane)
        styles = QWidget()
        grid = QGridLayout(styles)
        grid.setContentsMargins(0, 0, 0, 0)
        for row, out in enumerate(info.outputs):
            r = _OutputRow(self, out.name, base.styles[out.name], out.integer)
            self._outputs.append(r)
            for col, w in enumerate((QLabel(out.name), r.color_button, r.width, r.kind, r.shown)):
                grid.addWidget(w, row, col)
        form.addRow("Outputs", styles)
        self.guides = QLineEdit(", ".join(number_text(g) for g in base.guides))
        self.guides.setObjectName("guides")
        self.guides.setPlaceholderText("e.g. 30, 70")
        self.guides.setToolTip("Horizontal guide lines in the indicator's pane, separated by commas")
        self.guides.textChanged.connect(self.revalidate)
        form.addRow("Guide lines", self.guides)
        self.form_area.setWidget(body)
        self.revalidate()

    def _param_input(self, p: ParamInfo, value: int | float) -> QWidget:
        if p.kind == "matype":
            combo = QComboBox()
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(22)
            for code, short in p.choices:
                combo.addItem(f"{short} — {ma_type_name(code)}", code)
            combo.setCurrentIndex(max(0, combo.findData(int(value))))
            combo.currentIndexChanged.connect(self.revalidate)
            return combo
        spin: QSpinBox | QDoubleSpinBox = ParamSpin(p) if p.kind == "int" else ParamDoubleSpin(p)
        spin.setValue(value)  # type: ignore[arg-type]
        spin.lineEdit().textEdited.connect(self.revalidate)
        spin.valueChanged.connect(self.revalidate)
        return spin

    def _pane_combo(self, pane: Pane) -> QComboBox:
        combo = QComboBox()
        combo.setObjectName("pane")
        combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        combo.setMinimumContentsLength(26)
        combo.addItem("Price pane (on the candles)", "price")
        combo.addItem("New pane below" if self._edit is None else "Own pane", "own")
        for n, label in self._panes:
            combo.addItem(f"Pane {n}: {label}", n)
        want: Pane = pane
        if self._current_pane is not None:
            want = "price" if self._current_pane == 0 else self._current_pane
        index = combo.findData(want)
        combo.setCurrentIndex(index if index >= 0 else 1)
        combo.currentIndexChanged.connect(self.revalidate)
        return combo

    def _form_spec(self) -> IndicatorSpec:
        """The spec the form describes (not validated); SpecError for input that is not a number."""
        info, base = self._info, self._base
        if info is None or base is None:
            raise SpecError("pick an indicator first")
        params: dict[str, int | float] = {}
        for name, w in self._params.items():
            if isinstance(w, QComboBox):
                params[name] = int(w.currentData())
            elif isinstance(w, QSpinBox | QDoubleSpinBox):
                if not w.hasAcceptableInput():
                    raise SpecError(f"{info.name}: {name} needs a number")
                params[name] = w.value()
        try:
            guides = parse_guides(self.guides.text())
        except ValueError as exc:
            raise SpecError(f"{info.name}: {exc}") from None
        return IndicatorSpec(
            id=base.id,
            function=info.name,
            params=params,
            source=self.source.currentData() if self.source is not None else "close",
            pane=self.pane.currentData(),
            styles={r.name: r.style() for r in self._outputs},
            guides=guides,
            visible=base.visible,
        )

    def revalidate(self, *_: Any) -> None:
        """Check the form: show the first problem (one line) and enable OK only when valid."""
        try:
            validate(self._form_spec())
        except SpecError as exc:
            self.message.setText(str(exc))
            self.ok.setEnabled(False)
            return
        except Exception as exc:  # never let a form problem escape into Qt
            self.message.setText(f"{self.function}: {exc}")
            self.ok.setEnabled(False)
            return
        self.message.setText("")
        self.ok.setEnabled(True)

    def choose_color(self, row: _OutputRow) -> QColorDialog:
        """Open the colour dialog for ``row`` (``open()``, not ``exec()``); its choice restyles the row."""
        dlg = QColorDialog(QColor(row.color), self)
        dlg.setWindowTitle(f"Colour of {row.name}")
        dlg.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)

        def chosen(color: QColor) -> None:
            row.set_color(color.name(QColor.NameFormat.HexRgb).upper())
            self.revalidate()

        dlg.colorSelected.connect(chosen)
        self.color_dialog = dlg
        dlg.open()
        return dlg

    def _accept(self) -> None:
        try:
            self._result = validate(self._form_spec())
        except Exception as exc:
            self.message.setText(str(exc))
            self.ok.setEnabled(False)
            return
        self.accept()
