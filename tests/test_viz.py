"""The figures package: one place and one style for every chart.

- Only `kdcore.viz` imports plotly among the engine's modules, and no page or UI helper builds a
  figure itself (they call `kdcore.viz`), so a figure is found in one guess.
- `style.layout` (figures built with plotly's API) and `style.figure` (figures written as dicts)
  give the same title, legend, margins and template.
"""

from __future__ import annotations

import ast
from pathlib import Path

import plotly.graph_objects as go

from kdcore.viz import style

ROOT = Path(__file__).resolve().parents[1]


def _imports_plotly(path: Path) -> bool:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "plotly" for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "plotly":
            return True
    return False


def test_only_the_figures_package_imports_plotly():
    offenders = [str(p.relative_to(ROOT)) for folder in ("kdcore", "pages", "ui") for p in (ROOT / folder).rglob("*.py")
                 if "viz" not in p.relative_to(ROOT).parts and _imports_plotly(p)]
    assert offenders == [], f"these build figures outside kdcore/viz: {offenders}"


def test_the_two_ways_of_building_a_figure_look_the_same():
    a = style.layout(go.Figure(go.Scatter(x=[1, 2], y=[3, 4])), "A title", height=300)
    b = style.figure([dict(type="scatter", x=[1, 2], y=[3, 4])], {}, "A title", height=300)
    for fig in (a, b):
        assert isinstance(fig, go.Figure)
    for key in ("title", "legend", "margin", "height", "template"):
        assert a.layout[key] == b.layout[key], key
    # at the bottom of the figure (anchored to it, so plotly makes room under the x-axis title), never
    # over the title
    assert a.layout.legend.yref == "container" and a.layout.legend.y == 0 and a.layout.legend.yanchor == "bottom"


def test_a_layout_override_keeps_the_rest_of_the_style():
    fig = style.figure([], {"margin": dict(l=10), "legend": dict(style.LEGEND_ABOVE)}, "t")
    assert fig.layout.margin.l == 10 and fig.layout.margin.t == style.MARGIN["t"]
    assert fig.layout.legend.orientation == "h" and fig.layout.legend.yref == "paper" and fig.layout.legend.y > 1


def test_the_engine_map_names_every_module():
    """kdcore/__init__.py's docstring is the newcomer's map: every engine module is on it."""
    import re

    import kdcore
    mods = sorted(p.stem for p in (ROOT / "kdcore").glob("*.py")
                  if p.stem not in ("__init__", "__main__") and not p.stem.startswith("runkinds"))
    missing = [m for m in mods if not re.search(rf"\b{m}\b", kdcore.__doc__)]
    assert missing == [], f"add these to kdcore/__init__.py's map: {missing}"
