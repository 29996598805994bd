"""Reading numbers typed into text boxes, with messages a person can act on.

`parse_values("1, 2, 4", float, "temperature")` -> (1.0, 2.0, 4.0); anything else raises a
ValueError whose text says what was wrong with which entry ("“abc” is not a whole number"),
never Python's own "invalid literal for int() with base 10".
"""

from __future__ import annotations

import math

MAX_WIDTH = 4096   # the widest hidden layer the pages train (wider ones take minutes and gigabytes)


def parse_values(text: str, kind: type, what: str, lo: float | None = None, hi: float | None = None) -> tuple:
    """Comma- (or space-, semicolon-) separated numbers of `kind` (int or float) within [lo, hi]."""
    parts = [p for p in str(text).replace(";", ",").replace(" ", ",").split(",") if p]
    if not parts:
        raise ValueError(f"give at least one {what} value")
    out = []
    for p in parts:
        try:
            v = kind(p)
        except ValueError:
            raise ValueError(f"“{p}” is not {'a whole number' if kind is int else 'a number'}: the {what} values "
                             f"must be {'whole numbers' if kind is int else 'numbers'} separated by commas") from None
        if isinstance(v, float) and not math.isfinite(v):
            raise ValueError(f"the {what} values must be finite numbers (got “{p}”)")
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            bounds = (f"between {lo:g} and {hi:g}" if lo is not None and hi is not None else
                      f"at least {lo:g}" if lo is not None else f"at most {hi:g}")
            raise ValueError(f"the {what} values must be {bounds} (got “{p}”)")
        out.append(v)
    return tuple(out)
