"""Indicators as data: :class:`IndicatorSpec`, its validation, JSON form and indicator sets. No Qt.

A spec says what to compute (TA-Lib function, parameters, price source) and how to show it
(pane, per-output style, guide lines, visibility). The chart, the side panels, the alert
engine and the backtest all take the same specs.

Panes: ``"price"`` draws on the candles; ``"own"`` asks for a new pane just for this indicator
(the default for oscillators); an int ``n >= 1`` puts it in the n-th indicator pane, shared
with whatever else is placed there (how the user moves an oscillator under another one).
``0`` means the price pane and is normalised to ``"price"``. Order in a set is draw order.

Validation messages are one line and start with the function name, e.g.
``"RSI: timeperiod must be between 2 and 100000 (got 0)"``: the parameter form shows them as is.
"""

from __future__ import annotations

import logging
import math
import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, TypeVar, cast, get_args

from binmon.indicators.catalog import STYLE_KINDS, FunctionInfo, ParamInfo, StyleKind, function_info
from binmon.indicators.hints import PALETTE, hint_for
from binmon.indicators.talib_meta import TalibParamError, dry_run

__all__ = [
    "FORMAT_VERSION",
    "SET_FORMAT",
    "SOURCES",
    "FrozenMap",
    "IndicatorSpec",
    "OutputStyle",
    "Pane",
    "Source",
    "SpecError",
    "default_spec",
    "dump_set",
    "from_dict",
    "load_set",
    "new_id",
    "to_dict",
    "validate",
    "with_new_ids",
]

log = logging.getLogger(__name__)

Source = Literal["close", "open", "high", "low", "hl2", "hlc3", "ohlc4"]
#: Price sources a single-price function can use (hl2 = (high+low)/2, hlc3, ohlc4 likewise).
SOURCES: tuple[Source, ...] = get_args(Source)
Pane = Literal["price", "own"] | int
#: Version of the JSON form written by :func:`to_dict` (readers accept this and older).
FORMAT_VERSION = 1
#: ``format`` tag of a saved indicator set / template.
SET_FORMAT = "binmon.indicator-set"
_MAX_PANE = 64
_MAX_GUIDES = 16
_COLOR_RE = re.compile(r"^#[0-9A-Fa-f]{6}(?:[0-9A-Fa-f]{2})?$")

K = TypeVar("K")
V = TypeVar("V")


class SpecError(ValueError):
    """A spec (or its JSON form) is invalid; the message is one line, fit for the user."""


class FrozenMap(Mapping[K, V]):
    """An immutable, hashable mapping (a frozen spec must not hold a dict someone can change)."""

    __slots__ = ("_data", "_hash")

    def __init__(self, items: Mapping[K, V] | Iterable[tuple[K, V]] = ()) -> None:
        self._data: dict[K, V] = dict(items)
        self._hash: int | None = None

    def __getitem__(self, key: K) -> V:
        return self._data[key]

    def __iter__(self) -> Iterator[K]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(frozenset(self._data.items()))
        return self._hash

    def __repr__(self) -> str:
        return f"FrozenMap({self._data!r})"


@dataclass(frozen=True, slots=True)
class OutputStyle:
    """How one output is drawn: colour ``#rrggbb[aa]``, width 1-4, style kind, shown or not."""

    color: str
    width: int = 1
    kind: StyleKind = "line"
    visible: bool = True


@dataclass(frozen=True, slots=True)
class IndicatorSpec:
    """One indicator on a chart. Plain, immutable, hashable; see the module doc for panes.

    ``params`` and ``styles`` may be given as dicts: they are frozen on construction. A spec
    built by hand is not checked until :func:`validate` (which returns the normalised form:
    every parameter and output present, ints as ints).
    """

    id: str
    function: str
    params: Mapping[str, int | float] = field(default_factory=FrozenMap)
    source: Source = "close"
    pane: Pane = "own"
    styles: Mapping[str, OutputStyle] = field(default_factory=FrozenMap)
    guides: tuple[float, ...] = ()
    visible: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", FrozenMap(self.params))
        object.__setattr__(self, "styles", FrozenMap(self.styles))
        object.__setattr__(self, "guides", tuple(self.guides))

    @property
    def compute_key(self) -> tuple[str, tuple[tuple[str, int | float], ...], str]:
        """What the values depend on: two specs with equal keys have equal series (style aside)."""
        return (self.function, tuple(sorted(self.params.items())), self.source)


def new_id() -> str:
    """A fresh random indicator id (``ind-`` + 10 hex digits)."""
    return f"ind-{uuid.uuid4().hex[:10]}"


# ---------------------------------------------------------------- validation


def validate(spec: IndicatorSpec) -> IndicatorSpec:
    """``spec`` checked and normalised, or :class:`SpecError` with a one-line message.

    Checks: known function; every parameter known, of its kind (whole number, finite number,
    MA type code) and within TA-Lib's range; the combination accepted by TA-Lib (a dry run,
    for constraints between parameters); a price source only on single-price functions; pane;
    styles of known outputs (colour, width 1-4, kind); finite guide lines. Missing parameters
    get their defaults, missing output styles the catalogue's (palette colours).
    """
    if not isinstance(spec.id, str) or not spec.id.strip():
        raise SpecError(f"indicator id must be a non-empty string (got {spec.id!r})")
    info = _info(spec.function)
    name = info.name
    params = _check_params(info, spec.params)
    if spec.source not in SOURCES:
        raise SpecError(f"{name}: source must be one of {', '.join(SOURCES)} (got {spec.source!r})")
    if spec.source != "close" and not info.takes_single_price:
        uses = ", ".join(info.inputs)
        raise SpecError(f"{name}: uses {uses}; a price source does not apply (got {spec.source!r})")
    styles = _check_styles(info, spec.styles)
    guides = _check_guides(name, spec.guides)
    if not isinstance(spec.visible, bool):
        raise SpecError(f"{name}: visible must be true or false (got {spec.visible!r})")
    try:
        dry_run(name, params)
    except TalibParamError:
        shown = ", ".join(f"{k}={_fmt(v)}" for k, v in params.items())
        raise SpecError(f"{name}: TA-Lib rejects these parameters together ({shown})") from None
    pane = _check_pane(name, spec.pane)
    return IndicatorSpec(spec.id, name, params, spec.source, pane, styles, guides, spec.visible)


def _info(function: object) -> FunctionInfo:
    if not isinstance(function, str) or not function:
        raise SpecError(f"indicator function must be a TA-Lib function name (got {function!r})")
    try:
        return function_info(function)
    except KeyError:
        raise SpecError(f"unknown indicator function {function!r}") from None


def _check_params(info: FunctionInfo, given: Mapping[str, Any]) -> dict[str, int | float]:
    known = {p.name: p for p in info.params}
    for key in given:
        if key not in known:
            has = f"parameters: {', '.join(known)}" if known else "it has no parameters"
            raise SpecError(f"{info.name}: unknown parameter {key!r} ({has})")
    return {p.name: _check_value(info.name, p, given.get(p.name, p.default)) for p in info.params}


def _check_value(function: str, p: ParamInfo, value: Any) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SpecError(f"{function}: {p.name} must be a number (got {value!r})")
    if not math.isfinite(value):
        raise SpecError(f"{function}: {p.name} must be a finite number (got {value!r})")
    if p.kind in ("int", "matype"):
        if value != int(value):
            raise SpecError(f"{function}: {p.name} must be a whole number (got {_fmt(value)})")
        value = int(value)
        codes = [c for c, _ in p.choices]
        if p.kind == "matype" and value not in codes:
            contiguous = codes == list(range(codes[0], codes[-1] + 1))
            listed = (
                f"between {codes[0]} and {codes[-1]}"
                if contiguous
                else "one of " + ", ".join(map(str, codes))
            )
            raise SpecError(f"{function}: {p.name} must be an MA type code {listed} (got {value})")
    else:
        value = float(value)
    lo, hi = p.minimum, p.maximum
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        if lo is not None and hi is not None:
            rule = f"between {_fmt(lo)} and {_fmt(hi)}"
        elif lo is not None:
            rule = f"at least {_fmt(lo)}"
        else:
            rule = f"at most {_fmt(hi)}" if hi is not None else "in range"
        raise SpecError(f"{function}: {p.name} must be {rule} (got {_fmt(value)})")
    return value


def _check_styles(info: FunctionInfo, given: Mapping[str, Any]) -> dict[str, OutputStyle]:
    names = info.output_names
    for key in given:
        if key not in names:
            raise SpecError(f"{info.name}: unknown output {key!r} (outputs: {', '.join(names)})")
    defaults = _default_styles(info, ())
    out: dict[str, OutputStyle] = {}
    for o in names:
        style = given.get(o, defaults[o])
        if not isinstance(style, OutputStyle):
            raise SpecError(f"{info.name}: style of {o} must be an OutputStyle (got {type(style).__name__})")
        if not isinstance(style.color, str) or not _COLOR_RE.match(style.color):
            raise SpecError(f"{info.name}: colour of {o} must be #rrggbb or #rrggbbaa (got {style.color!r})")
        if isinstance(style.width, bool) or not isinstance(style.width, int) or not 1 <= style.width <= 4:
            raise SpecError(f"{info.name}: width of {o} must be 1 to 4 (got {style.width!r})")
        if style.kind not in STYLE_KINDS:
            kinds = ", ".join(STYLE_KINDS)
            raise SpecError(f"{info.name}: style of {o} must be one of {kinds} (got {style.kind!r})")
        if not isinstance(style.visible, bool):
            raise SpecError(f"{info.name}: visible of {o} must be true or false (got {style.visible!r})")
        out[o] = style
    return out


def _check_guides(function: str, guides: Sequence[Any]) -> tuple[float, ...]:
    if len(guides) > _MAX_GUIDES:
        raise SpecError(f"{function}: at most {_MAX_GUIDES} guide lines (got {len(guides)})")
    for g in guides:
        if isinstance(g, bool) or not isinstance(g, int | float) or not math.isfinite(g):
            raise SpecError(f"{function}: guide lines must be finite numbers (got {g!r})")
    return tuple(float(g) for g in guides)


def _check_pane(function: str, pane: object) -> Pane:
    if pane in ("price", "own"):
        return cast(Pane, pane)
    if isinstance(pane, int) and not isinstance(pane, bool) and 0 <= pane <= _MAX_PANE:
        return "price" if pane == 0 else pane
    raise SpecError(f"{function}: pane must be 'price', 'own' or a number 1 to {_MAX_PANE} (got {pane!r})")


def _fmt(v: float | int) -> str:
    """A number as the user typed it: ``2`` not ``2.0``, ``0.01`` not ``0.010000``."""
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    return repr(v)


# ---------------------------------------------------------------- defaults


def default_spec(function: str, id: str | None = None, *, used_colors: Iterable[str] = ()) -> IndicatorSpec:
    """A new indicator with TA-Lib's default parameters and the presentation hints.

    Pane: price for overlays (and candlestick patterns), ``"own"`` otherwise. Colours: the
    first palette entries not in ``used_colors`` (so a second indicator does not reuse the
    first one's colours). ``id``: a fresh :func:`new_id` when None. SpecError for an unknown function.
    """
    info = _info(function)
    h = hint_for(info)
    spec = IndicatorSpec(
        id=id if id is not None else new_id(),
        function=info.name,
        params=info.defaults(),
        source="close",
        pane=h.pane or "own",
        styles=_default_styles(info, used_colors),
        guides=h.guides,
    )
    return validate(spec)


def _default_styles(info: FunctionInfo, used_colors: Iterable[str]) -> dict[str, OutputStyle]:
    h = hint_for(info)
    used = {c.upper() for c in used_colors}
    free = [c for c in PALETTE if c.upper() not in used] or list(PALETTE)
    styles: dict[str, OutputStyle] = {}
    for i, out in enumerate(info.outputs):
        kind = h.styles.get(out.name, out.style)
        color = h.markers[out.name].bull_color if out.name in h.markers else free[i % len(free)]
        styles[out.name] = OutputStyle(color, 1, kind, out.name not in h.hidden)
    return styles


# ---------------------------------------------------------------- JSON form


def to_dict(spec: IndicatorSpec) -> dict[str, Any]:
    """The JSON-safe form of ``spec`` (plain dicts, lists, str, numbers, bools), versioned ``v``."""
    return {
        "v": FORMAT_VERSION,
        "id": spec.id,
        "function": spec.function,
        "params": dict(spec.params),
        "source": spec.source,
        "pane": spec.pane,
        "styles": {
            name: {"color": s.color, "width": s.width, "kind": s.kind, "visible": s.visible}
            for name, s in spec.styles.items()
        },
        "guides": list(spec.guides),
        "visible": spec.visible,
    }


def from_dict(obj: object, *, make_id: Callable[[], str] = new_id) -> IndicatorSpec:
    """A validated spec from its JSON form; :class:`SpecError` naming the problem otherwise.

    Tolerant: unknown keys are ignored (newer minor additions), missing keys take the values
    :func:`default_spec` would give, a missing id gets ``make_id()``, styles of outputs this
    TA-Lib does not have are dropped. Strict: a format version above :data:`FORMAT_VERSION`,
    an unknown function, bad values (as :func:`validate`).
    """
    if not isinstance(obj, Mapping):
        raise SpecError(f"an indicator must be a JSON object (got {type(obj).__name__})")
    version = obj.get("v", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise SpecError(f"indicator format version must be a positive integer (got {version!r})")
    if version > FORMAT_VERSION:
        raise SpecError(f"indicator saved in format {version}; this binmon reads up to {FORMAT_VERSION}")
    info = _info(obj.get("function"))
    raw_id = obj.get("id")
    spec_id = raw_id if isinstance(raw_id, str) and raw_id.strip() else make_id()
    params = obj.get("params") or {}
    if not isinstance(params, Mapping):
        raise SpecError(f"{info.name}: params must be an object (got {type(params).__name__})")
    raw_styles = obj.get("styles") or {}
    if not isinstance(raw_styles, Mapping):
        raise SpecError(f"{info.name}: styles must be an object (got {type(raw_styles).__name__})")
    base = default_spec(info.name, spec_id)  # what a missing key means
    styles = {
        name: _style_from(info.name, name, raw, base.styles[name])
        for name, raw in raw_styles.items()
        if name in base.styles
    }
    guides = obj.get("guides", base.guides)
    if not isinstance(guides, list | tuple):
        raise SpecError(f"{info.name}: guides must be a list (got {type(guides).__name__})")
    spec = IndicatorSpec(
        id=spec_id,
        function=info.name,
        params=dict(params),
        source=obj.get("source", base.source),
        pane=obj.get("pane", base.pane),
        styles=styles,
        guides=tuple(guides),
        visible=obj.get("visible", True),
    )
    return validate(spec)


def _style_from(function: str, output: str, raw: object, default: OutputStyle) -> OutputStyle:
    if not isinstance(raw, Mapping):
        raise SpecError(f"{function}: style of {output} must be an object (got {type(raw).__name__})")
    return OutputStyle(
        color=raw.get("color", default.color),
        width=raw.get("width", default.width),
        kind=raw.get("kind", default.kind),
        visible=raw.get("visible", default.visible),
    )


# ---------------------------------------------------------------- sets and templates


def dump_set(specs: Iterable[IndicatorSpec], *, name: str | None = None) -> dict[str, Any]:
    """A chart's indicator set (or a named template) as one JSON-safe object, in draw order."""
    out: dict[str, Any] = {"format": SET_FORMAT, "v": FORMAT_VERSION}
    if name is not None:
        out["name"] = name
    out["indicators"] = [to_dict(s) for s in specs]
    return out


def load_set(obj: object, errors: list[str] | None = None) -> list[IndicatorSpec]:
    """The specs of a saved set (a :func:`dump_set` object, or a bare list of specs).

    A bad entry is skipped, not fatal: its one-line message (``"indicator 3: ..."``) is
    appended to ``errors`` when given and logged as a warning; the others are kept in order.
    A second entry with an id already seen is a bad entry. Raises :class:`SpecError` only when
    ``obj`` is not a set at all (or a set of a newer format).
    """
    if isinstance(obj, Mapping):
        if obj.get("format", SET_FORMAT) != SET_FORMAT:
            raise SpecError(f"not an indicator set (format {obj.get('format')!r})")
        version = obj.get("v", 1)
        if isinstance(version, int) and version > FORMAT_VERSION:
            raise SpecError(f"indicator set saved in format {version}; binmon reads up to {FORMAT_VERSION}")
        entries = obj.get("indicators", [])
    else:
        entries = obj
    if not isinstance(entries, list):
        raise SpecError(f"an indicator set must hold a list of indicators (got {type(entries).__name__})")
    specs: list[IndicatorSpec] = []
    seen: set[str] = set()
    for i, entry in enumerate(entries, start=1):
        try:
            spec = from_dict(entry)
            if spec.id in seen:
                raise SpecError(f"duplicate id {spec.id!r} (kept the first)")
        except SpecError as exc:
            message = f"indicator {i}: {exc}"
            log.warning("indicator set: %s", message)
            if errors is not None:
                errors.append(message)
            continue
        seen.add(spec.id)
        specs.append(spec)
    return specs


def with_new_ids(specs: Iterable[IndicatorSpec], make_id: Callable[[], str] = new_id) -> list[IndicatorSpec]:
    """``specs`` with fresh ids: how a template is applied to another chart without id clashes."""
    return [replace(s, id=make_id()) for s in specs]
