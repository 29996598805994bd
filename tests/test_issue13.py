"""Issue 13, part 2: problems a new user hit, each with a test that failed on the old code.

Input checks (typed widths, α = 0), wording (plurals, signed deltas, durations), and the pages'
messages; the engine-side fixes live beside their modules' tests (test_sweep, test_temperature...).
"""

from __future__ import annotations

import pytest

from kdcore.distill import describe_outcome
from kdcore.inputs import parse_values
from kdcore.text import format_seconds, plural, signed_points


def test_parse_values_says_what_is_wrong_in_words():
    assert parse_values("1, 2;4", float, "T") == (1.0, 2.0, 4.0)
    assert parse_values("512 256", int, "width", 1, 4096) == (512, 256)
    for text, kind, words in (("abc", int, "“abc” is not a whole number"), ("1.5", int, "whole number"),
                              ("inf", float, "finite"), ("nan", float, "finite"), ("", int, "at least one"),
                              ("5000", int, "between 1 and 4096"), ("0", int, "between 1 and 4096")):
        with pytest.raises(ValueError) as err:
            parse_values(text, kind, "width", 1, 4096)
        assert words in str(err.value) and "invalid literal" not in str(err.value)


def test_wording_helpers():
    assert plural(1, "epoch") == "1 epoch" and plural(3, "epoch") == "3 epochs"
    assert plural(1, "bit") == "1 bit" and plural(2, "class", "classes") == "2 classes"
    assert format_seconds(0.03) == "under 0.1 s" and format_seconds(2.44) == "2.4 s"
    assert format_seconds(37.2) == "37 s" and format_seconds(300) == "5.0 min"
    assert signed_points(1.26) == "+1.3 pts" and signed_points(-0.44) == "-0.4 pts"
    assert signed_points(0.02) == "0.0 pts" and signed_points(-0.04) == "0.0 pts"   # no sign: no arrow


def test_alpha_zero_is_called_a_labels_only_run_not_a_distillation():
    chance = {"accuracy": 0.103, "bytes": 100}
    s = describe_outcome({"accuracy": 0.106, "bytes": 100}, chance, alpha=0.0)
    assert "α = 0" in s and "labels only" in s and "better" not in s and "distilled student is" not in s
    # with α > 0 it is a distillation, as before
    assert "better" in describe_outcome({"accuracy": 0.9, "bytes": 100}, {"accuracy": 0.8, "bytes": 100}, alpha=0.5)


def test_a_zero_metric_delta_has_no_arrow_and_no_colour():
    from ui.fmt import delta
    assert delta(0.02, "vs scratch") == {"delta": "0.0 pts vs scratch", "delta_color": "off", "delta_arrow": "off"}
    assert delta(1.26, "vs scratch") == {"delta": "+1.3 pts vs scratch", "delta_color": "normal", "delta_arrow": "auto"}
    assert delta(-3, "vs b = 0", 0, inverse=True, unit="")["delta"] == "-3 vs b = 0"
    assert delta(0, "vs b = 0", 0, inverse=True, unit="")["delta_arrow"] == "off"
