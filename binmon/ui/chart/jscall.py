"""Build Python -> JavaScript calls for the chart page (architecture guide, point 6).

Every call the program makes into the page is built here, by :func:`js_call`, and nowhere
else: arguments are encoded with :func:`json.dumps`, so quoting is complete by construction
and no caller ever pastes a value into a script. Pure Python, no Qt: tested without a display.
"""

from __future__ import annotations

import json
import re
from typing import Any

#: A dotted JavaScript name such as ``binmon.setBars``: identifiers only, no brackets or calls.
_FN_NAME = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*(\.[A-Za-z_$][A-Za-z0-9_$]*)*\Z")

# Characters JSON allows raw inside strings that must not reach a script verbatim:
# "<" so that "</script>" or "<!--" can never appear (the text may end up inside an HTML page),
# ">" and "&" for the same reason; U+2028 / U+2029 were line terminators inside JavaScript string
# literals before ES2019 (ensure_ascii escapes them already; this keeps it so if it is turned off).
_UNSAFE = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}
_UNSAFE_RE = re.compile("[<>&\u2028\u2029]")


def js_value(value: Any) -> str:
    """``value`` as a JavaScript expression (JSON, with HTML-significant characters escaped).

    Accepts what :func:`json.dumps` accepts (dicts with str keys, lists, tuples, str, int,
    float, bool, None). NaN and infinities have no JSON form and would silently become
    invalid or wrong data in the page, so they raise ValueError, as does any other value
    JSON cannot encode (TypeError from json is turned into ValueError too).
    """
    try:
        text = json.dumps(value, allow_nan=False, ensure_ascii=True, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"cannot pass {type(value).__name__} to JavaScript: {exc}") from None
    # Safe to replace anywhere: these characters can only occur inside JSON string literals,
    # where the \\u form means the same character.
    return _UNSAFE_RE.sub(lambda m: _UNSAFE[m.group(0)], text)


def js_call(fn_name: str, *args: Any) -> str:
    """The JavaScript expression calling ``fn_name(*args)``, e.g. ``binmon.setTheme("dark")``.

    ``fn_name`` must be a plain dotted identifier (ValueError otherwise): it is code, never
    data. Each argument goes through :func:`js_value` (ValueError for NaN, infinities and
    values JSON cannot encode).
    """
    if not _FN_NAME.match(fn_name):
        raise ValueError(f"not a JavaScript function name: {fn_name!r}")
    return f"{fn_name}({','.join(js_value(a) for a in args)})"
