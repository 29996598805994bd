"""Small wording helpers for sentences people read: plurals, durations, signed differences.

"1 epochs", "1 bit(s)" and "trained in 0.0 s" read badly; pages and engine summaries use these.
"""

from __future__ import annotations


def plural(n: float, word: str, many: str | None = None) -> str:
    """'1 epoch', '3 epochs', '1 bit', '2 bits'; `many` for irregular plurals ('1 class', '2 classes')."""
    many = many or word + "s"
    return f"{n:g} {word if n == 1 else many}" if isinstance(n, float) else f"{n} {word if n == 1 else many}"


def format_seconds(s: float) -> str:
    """A duration for a caption: 'under 0.1 s', '2.4 s', '37 s', '4.2 min'."""
    if s < 0.1:
        return "under 0.1 s"
    if s < 10:
        return f"{s:.1f} s"
    if s < 90:
        return f"{s:.0f} s"
    return f"{s / 60:.1f} min"


def signed_points(delta_pts: float, digits: int = 1) -> str:
    """A difference in percentage points: '+1.3 pts', '−0.4 pts', and '±0.0 pts' when it rounds to zero
    (no sign: st.metric then draws no arrow for it)."""
    if round(delta_pts, digits) == 0:
        return f"{0:.{digits}f} pts"
    return f"{delta_pts:+.{digits}f} pts"
