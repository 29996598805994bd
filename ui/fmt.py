"""Metric deltas that read right: no green ↑ on “+0.0 pts”.

`st.metric(label, value, **delta(0.0, "vs scratch"))` draws “0.0 pts vs scratch” in grey with no
arrow; a real difference keeps its sign, arrow and colour (`inverse=True` where lower is better).
"""

from __future__ import annotations

from kdcore.text import signed_points


def delta(pts: float, suffix: str = "", digits: int = 1, inverse: bool = False, unit: str = "pts") -> dict:
    """Keyword arguments for st.metric: delta text, colour and arrow for a difference of `pts`."""
    zero = round(pts, digits) == 0
    text = signed_points(pts, digits) if unit == "pts" else (f"{0:.{digits}f}" if zero else f"{pts:+.{digits}f}")
    return {"delta": f"{text} {suffix}".strip(), "delta_color": "off" if zero else ("inverse" if inverse else "normal"),
            "delta_arrow": "off" if zero else "auto"}
