"""Reports: one self-contained HTML file for a stored run, or for a comparison of runs.

The file holds interactive plotly figures with plotly.js embedded once (so it opens offline, with
no request leaving the machine), the settings, the numbers, the verdict sentence, the date and the
code version. Each figure's camera button saves a PNG at presentation resolution (1600 × 900,
twice that in pixels) under a meaningful file name: plotly.js renders it in the browser, so no
image-export package (kaleido, a Chrome) is needed on the server.

`run_report(record, result)` and `comparison_report(records)` build the documents from the run
store's records (kdcore.store.RunRecord) and, for a distillation, its decoded result.
"""

from __future__ import annotations

import html
import json
import re
import time
from dataclasses import dataclass, field
from typing import Sequence

import plotly.graph_objects as go

from kdcore.text import format_seconds
from kdcore.store import RunRecord, code_version
from kdcore.viz import common

PNG_WIDTH, PNG_HEIGHT, PNG_SCALE = 1600, 900, 2     # a projector's 16:9, at twice its pixels

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2rem auto;
       max-width: 1100px; color: #1f2937; line-height: 1.45; padding: 0 1rem; }
h1 { font-size: 1.8rem; margin-bottom: .2rem; } h2 { font-size: 1.25rem; margin-top: 2rem; }
.meta { color: #6b7280; font-size: .9rem; }
.verdict { background: #eef6ee; border-left: 4px solid #54A24B; padding: .7rem 1rem; margin: 1rem 0; }
table { border-collapse: collapse; margin: .5rem 0; font-size: .92rem; }
th, td { border: 1px solid #e5e7eb; padding: .3rem .6rem; text-align: left; vertical-align: top; }
th { background: #f9fafb; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.figure { margin: 1rem 0 2rem; }
"""


def slug(text: str, limit: int = 60) -> str:
    """A file-name-safe piece of text: 'T = 4, α = 0.9' -> 'T-4-a-0-9'."""
    text = text.replace("α", "a").replace("β", "b").replace("×", "x")
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")[:limit] or "figure"


def png_config(filename: str) -> dict:
    """plotly's config for a chart whose camera button saves a presentation-sized PNG as `filename`.png."""
    return {"displaylogo": False, "toImageButtonOptions": {
        "format": "png", "filename": slug(filename, 120), "width": PNG_WIDTH, "height": PNG_HEIGHT, "scale": PNG_SCALE}}


@dataclass
class Report:
    title: str
    verdict: str | None = None
    settings: list[tuple[str, object]] = field(default_factory=list)          # (name, value)
    tables: list[tuple[str, list[dict]]] = field(default_factory=list)        # (caption, rows)
    figures: list[tuple[str, go.Figure]] = field(default_factory=list)        # (file-name stem, figure)
    notes: list[str] = field(default_factory=list)
    created: float = field(default_factory=time.time)
    version: str = field(default_factory=code_version)

    def to_html(self) -> str:
        esc = html.escape
        parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{esc(self.title)}</title>"
                 f"<style>{CSS}</style></head><body>",
                 f"<h1>{esc(self.title)}</h1>",
                 f"<p class='meta'>Distillation Lab report · made {esc(time.strftime('%Y-%m-%d %H:%M', time.localtime(self.created)))}"
                 f" · code version {esc(str(self.version))}</p>"]
        if self.verdict:
            parts.append(f"<p class='verdict'>{esc(self.verdict)}</p>")
        for note in self.notes:
            parts.append(f"<p>{esc(note)}</p>")
        if self.settings:
            parts.append("<h2>Settings</h2><table>" + "".join(
                f"<tr><th>{esc(str(k))}</th><td>{esc(_text(v))}</td></tr>" for k, v in self.settings) + "</table>")
        for caption, rows in self.tables:
            if not rows:
                continue
            cols = list(dict.fromkeys(k for r in rows for k in r))
            parts.append(f"<h2>{esc(caption)}</h2><table><tr>" + "".join(f"<th>{esc(c)}</th>" for c in cols) + "</tr>")
            for r in rows:
                parts.append("<tr>" + "".join(_cell(r.get(c)) for c in cols) + "</tr>")
            parts.append("</table>")
        if self.figures:
            parts.append("<h2>Figures</h2><p class='meta'>Interactive; the camera button above each one "
                         f"saves it as a PNG ({PNG_WIDTH * PNG_SCALE} × {PNG_HEIGHT * PNG_SCALE} px).</p>")
        for i, (stem, fig) in enumerate(self.figures):
            div = fig.to_html(full_html=False, include_plotlyjs=(i == 0), include_mathjax=False,
                              config=png_config(stem), div_id=f"figure-{i}")
            parts.append(f"<div class='figure'>{div}</div>")
        parts.append("</body></html>")
        return "\n".join(parts)


def _text(v) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, (dict, list, tuple)):
        return json.dumps(v)
    return str(v)


def _cell(v) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return "<td></td>"
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return f"<td class='num'>{html.escape(f'{v:,.4g}' if isinstance(v, float) else f'{v:,}')}</td>"
    return f"<td>{html.escape(_text(v))}</td>"


def flat_settings(config: dict, prefix: str = "") -> list[tuple[str, object]]:
    """A run's config JSON as (dotted name, value) rows."""
    rows = []
    for k, v in config.items():
        name = f"{prefix}{k}"
        if isinstance(v, dict):
            rows += flat_settings(v, name + ".")
        else:
            rows.append((name, v))
    return rows


def _numbers(rec: RunRecord) -> dict:
    s = rec.summary or {}
    row = {"run": rec.display_name, "id": rec.id, "kind": rec.kind, "status": rec.status, "dataset": rec.dataset,
           "seed": rec.data_seed}
    if "accuracy" in s:
        row["test accuracy (%)"] = 100 * float(s["accuracy"])
    for k in ("gain_pts", "params", "bytes"):
        if s.get(k) is not None:
            row[{"gain_pts": "gain vs labels only (pts)", "params": "parameters", "bytes": "size (bytes)"}[k]] = s[k]
    if rec.seconds:
        row["time (s)"] = round(float(rec.seconds), 1)
    return row


def _stem(rec: RunRecord, what: str) -> str:
    return f"{rec.kind}-{rec.dataset or ''}-{rec.id}-{what}"


def run_report(rec: RunRecord, result=None) -> Report:
    """The report of one stored run: its settings, numbers, curves and, for a distillation, the
    students' table, the verdict, the training curves and the confusion matrices."""
    rep = Report(title=f"{rec.display_name}", settings=[("run id", rec.id), ("kind", rec.kind),
                                                          ("status", rec.status), ("dataset", rec.dataset),
                                                          ("split seed", rec.data_seed)]
                 + flat_settings(rec.config), version=rec.code_version or code_version())
    if rec.finished:
        rep.notes.append(f"Run finished {time.strftime('%Y-%m-%d %H:%M', time.localtime(rec.finished))}"
                         + (f" after {format_seconds(rec.seconds)}." if rec.seconds else "."))
    rep.tables.append(("Numbers", [_numbers(rec)]))
    rep.verdict = (rec.summary or {}).get("text") or (rec.summary or {}).get("verdict")
    summary_fn = getattr(result, "summary", None)
    if callable(summary_fn):
        try:
            rep.verdict = summary_fn()
        except Exception:
            pass
    metrics = {name: getattr(result, attr) for name, attr in (("teacher", "teacher_metrics"), ("distilled", "distilled_metrics"),
                                                                ("scratch", "scratch_metrics"), ("teacher's hard labels", "hard_metrics"))
               if result is not None and getattr(result, attr, None) is not None}
    if metrics:
        rep.tables.append(("Models", [{"model": name, "test accuracy (%)": 100 * m["accuracy"], "test errors": m.get("errors"),
                                       "agreement with teacher (%)": 100 * m.get("agreement", 1.0),
                                       "parameters": m.get("params"), "size (bytes)": m.get("bytes")}
                                      for name, m in metrics.items()]))
    if result is not None and getattr(result, "distilled_history", None) is not None:
        curves = {"distilled": result.distilled_history.to_records(), "scratch": result.scratch_history.to_records()}
        if getattr(result, "hard_history", None) is not None:
            curves["hard labels"] = result.hard_history.to_records()
        rep.figures.append((_stem(rec, "validation-accuracy"), common.training_curves(curves, "val_acc")))
        for which, counts in getattr(result, "confusion", {}).items():
            names = [str(i) for i in range(len(counts))]
            rep.figures.append((_stem(rec, f"confusion-{which}"), common.confusion_heatmap(
                counts, names, f"Confusion matrix: {which} (test set)")))
    elif any(rec.history.values() if rec.history else []):
        rep.figures.append((_stem(rec, "curves"), common.live_curves(
            {k: v for k, v in rec.history.items() if v}, "Validation accuracy per epoch")))
    return rep


def comparison_report(records: Sequence[RunRecord]) -> Report:
    """The report of two or more runs side by side: their numbers, their settings where they differ,
    and their curves overlaid."""
    rep = Report(title=f"Comparison of {len(records)} runs",
                 version=", ".join(sorted({r.code_version or "?" for r in records})))
    rep.tables.append(("Numbers", [_numbers(r) for r in records]))
    flat = [dict(flat_settings(r.config)) for r in records]
    keys = list(dict.fromkeys(k for f in flat for k in f))
    differ = [k for k in keys if len({json.dumps(f.get(k), sort_keys=True, default=str) for f in flat}) > 1]
    rep.tables.append(("Settings that differ", [{"run": r.display_name, **{k: _text(f.get(k)) for k in differ}}
                                                for r, f in zip(records, flat)]))
    same = [(k, flat[0].get(k)) for k in keys if k not in differ]
    rep.settings = same
    best = max((r for r in records if "accuracy" in (r.summary or {})), key=lambda r: r.summary["accuracy"], default=None)
    if best is not None:
        rep.verdict = (f"Highest test accuracy: {best.display_name}, {100 * best.summary['accuracy']:.1f} %"
                       f" (one run each: differences of a point or two can be noise).")
    curves = {f"{r.display_name} · {name}": ys for r in records for name, ys in (r.history or {}).items() if ys}
    if curves:
        rep.figures.append(("comparison-" + "-".join(r.id for r in records)[:80] + "-curves",
                            common.live_curves(curves, "Validation accuracy per epoch, runs overlaid")))
    return rep
