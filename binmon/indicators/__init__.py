"""TA-Lib indicators for binmon: catalogue, specs, engine. Pure Python + numpy + TA-Lib, no Qt.

* :mod:`.catalog` - every TA-Lib function from its own metadata (groups, inputs, parameters
  with ranges, outputs); :mod:`.hints` - the few presentation hints (guide lines, markers).
* :mod:`.spec` - :class:`IndicatorSpec`, validation, JSON form, indicator sets / templates.
* :mod:`.engine` - full computation and bit-exact live updates (:class:`Engine`), worker glue.
* :mod:`.chart_data` - series as columnar chart data.
"""

from binmon.indicators.catalog import (
    FunctionInfo,
    OutputInfo,
    ParamInfo,
    catalog,
    function_info,
    groups,
    search,
)
from binmon.indicators.engine import (
    Engine,
    LiveUpdate,
    OutOfOrderBar,
    build_engine,
    build_engine_async,
    compute,
    compute_async,
    prepare,
    prepare_async,
)
from binmon.indicators.spec import (
    IndicatorSpec,
    OutputStyle,
    SpecError,
    default_spec,
    dump_set,
    from_dict,
    load_set,
    to_dict,
    validate,
)

__all__ = [
    "Engine",
    "FunctionInfo",
    "IndicatorSpec",
    "LiveUpdate",
    "OutOfOrderBar",
    "OutputInfo",
    "OutputStyle",
    "ParamInfo",
    "SpecError",
    "build_engine",
    "build_engine_async",
    "catalog",
    "compute",
    "compute_async",
    "default_spec",
    "dump_set",
    "from_dict",
    "function_info",
    "groups",
    "load_set",
    "prepare",
    "prepare_async",
    "search",
    "to_dict",
    "validate",
]
