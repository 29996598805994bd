"""Runs: every run of this workspace (its history), live progress, compare, rename, delete, download."""

import json

import streamlit as st

from kdcore import codec, viz
from kdcore.viz import report
from kdcore.models import format_bytes
from kdcore.store import runs_frame
from ui import present
from ui import frame
from ui import links, runs, state
from ui import table as table_ui

store = runs.store()
ws = state.workspace()

st.title("Runs")
st.markdown("Every teacher, distillation, sweep and compression run of this workspace, kept on the "
            "server: they outlive the page, a reload and a server restart. The workspace id is in the "
            "address bar: bookmark it, or open it in another browser, to find these runs again.")
for notice in store.notices:
    st.warning(notice)

records = store.workspace_runs(ws)
active = [r for r in records if r.status in ("queued", "running")]
if active:
    st.subheader("Running now")
    for r in active:
        runs.watch(r.id, key=f"runs_{r.id}", label=r.display_name, on_end="app")

if not records:
    st.info("No runs yet in this workspace. Start one on **Distill** (or any page with a training "
            "button); it will be listed here.")
    frame.stop()

# ---- the history as a table, filtered ----
st.subheader("History")
table = runs_frame(records)
c1, c2, c3 = st.columns([2, 2, 3])
kinds = c1.multiselect("Kind", sorted(table["kind"].unique()), key="runs_kinds", bind="query-params", placeholder="all kinds")
statuses = c2.multiselect("Status", sorted(table["status"].unique()), key="runs_status", bind="query-params", placeholder="any status")
text = c3.text_input("Name contains", key="runs_text", bind="query-params", placeholder="e.g. T=4")
shown = table
if kinds:
    shown = shown[shown["kind"].isin(kinds)]
if statuses:
    shown = shown[shown["status"].isin(statuses)]
if text:
    shown = shown[shown["name"].str.contains(text, case=False, regex=False)]
st.caption(f"{len(shown)} of {len(table)} runs.")
table_ui.show(shown, key="runs_csv", file_name=f"runs-{ws}.csv", hide=["id", "dataset_fingerprint"],
              formats={"accuracy_pct": "%.2f", "gain_pts": "%+.2f", "seconds": "%.1f", "params": "%d"},
              labels={"accuracy_pct": "test accuracy (%)", "gain_pts": "gain vs labels only (pts)",
                      "seconds": "time (s)", "bytes": "size (bytes)", "code_version": "code version"})

by_id = {r.id: r for r in records}
label = {r.id: f"{r.display_name} · {r.status}" for r in records}

# ---- compare ----
st.subheader("Compare")
chosen = st.multiselect("Runs to compare (two or more)", list(shown["id"]), format_func=label.get,
                        key="runs_compare", max_selections=8)
if len(chosen) >= 2:
    curves = {}
    for rid in chosen:
        for name, ys in (by_id[rid].history or {}).items():
            if ys:
                curves[f"{by_id[rid].display_name} · {name}"] = ys
    if curves:
        present.chart(viz.common.live_curves(curves, "Validation accuracy per epoch, runs overlaid"),
                        width="stretch", key="runs_compare_chart")
    else:
        st.caption("These runs have no per-epoch curves to overlay.")
    compared = table[table["id"].isin(chosen)][["name", "kind", "status", "accuracy_pct", "gain_pts",
                                                  "params", "bytes", "seconds"]]
    table_ui.show(compared, key="runs_compare_csv", file_name=f"runs-compared-{ws}.csv",
                  formats={"accuracy_pct": "%.2f", "gain_pts": "%+.2f", "seconds": "%.1f"},
                  labels={"accuracy_pct": "test accuracy (%)", "gain_pts": "gain vs labels only (pts)",
                          "seconds": "time (s)", "bytes": "size (bytes)"},
                  settings={"code version": ", ".join(sorted({str(by_id[r].code_version) for r in chosen}))})
    # built when pressed (a report embeds plotly.js, ~4.6 MB), not on every rerun
    st.download_button("Report of this comparison (HTML)",
                       lambda: report.comparison_report([by_id[r] for r in chosen]).to_html(),
                       f"comparison-{len(chosen)}-runs-{ws}.html", "text/html", key="runs_compare_report",
                       icon=":material/description:",
                       help="One file that opens offline: numbers, settings that differ, curves overlaid "
                            "(each chart saves a PNG at presentation size), date and code version.")
else:
    st.caption("Pick two or more runs to overlay their curves and compare their numbers.")

# ---- one run: rename, delete, download ----
st.subheader("One run")
one_options = list(shown["id"]) or list(table["id"])
if st.session_state.get("runs_one") in by_id and st.session_state["runs_one"] not in one_options:
    one_options.insert(0, st.session_state["runs_one"])    # a run link's run, hidden by the filters
rid = st.selectbox("Run", one_options, format_func=label.get, key="runs_one")
rec = by_id[rid]
st.caption(f"{rec.kind} run `{rec.id}` · {rec.status} · dataset {rec.dataset} (split seed {rec.data_seed}, "
           f"fingerprint {rec.dataset_fingerprint or '—'}) · code version {rec.code_version}"
           + (f" · {rec.seconds:.1f} s" if rec.seconds else ""))
if rec.error:
    st.error(rec.error)
c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
new_name = c1.text_input("Name", value=rec.display_name, key=f"runs_name_{rid}", max_chars=120)
if c2.button("Rename", key=f"runs_rename_{rid}", disabled=not new_name.strip() or new_name == rec.display_name):
    store.rename(ws, rid, new_name)
    st.rerun()

with st.expander("Settings (JSON)"):
    st.json(rec.config, expanded=False)

if rec.status in ("finished", "stopped"):
    result = runs.result(rid)
    st.download_button("Report of this run (HTML)", lambda: report.run_report(rec, result).to_html(),
                       f"{report.slug(rec.display_name)}-{rid}.html", "text/html", key=f"runs_report_{rid}",
                       icon=":material/description:",
                       help="One file that opens offline: settings, numbers, the verdict, interactive charts "
                            "(each saves a PNG at presentation size), date and code version.")
    st.caption("Link to this result (opens it without training again): "
               f"`{links.link(links.page_of_run(rec.kind)[0], {state.RUN_PARAM: rid})}`")
    models = codec.modules_in(result) if result is not None else {}
    if models:
        which = st.selectbox("Model to download", list(models), key=f"runs_model_{rid}")
        model = models[which]
        meta = {"run": rid, "kind": rec.kind, "model": which, "config": json.dumps(rec.config),
                "architecture": repr(model)}
        stem = f"{rec.kind}-{rid}-{which}".replace("[", "_").replace("]", "").replace("'", "").replace(".", "_")
        d1, d2 = st.columns(2)
        d1.download_button("Weights (safetensors)", lambda: codec.module_file(model, meta), f"{stem}.safetensors",
                           "application/octet-stream", key=f"runs_dl_w_{rid}", icon=":material/download:")
        d2.download_button("Its config (JSON)", json.dumps({"run": rid, "kind": rec.kind, "model": which,
                                                           "config": rec.config, "architecture": repr(model),
                                                           "summary": rec.summary}, indent=1),
                           f"{stem}.json", "application/json", key=f"runs_dl_c_{rid}", icon=":material/download:")
        params = sum(p.numel() for p in model.parameters())
        st.caption(f"{which}: {params:,} parameters ({format_bytes(4 * params)} as float32).")

if rec.status not in ("queued", "running"):
    if st.toggle("Delete this run", key=f"runs_delete_arm_{rid}"):
        st.warning("It will be removed from this workspace (and from the server, when no other workspace lists it).")
        if st.button("Delete", key=f"runs_delete_{rid}", type="primary", icon=":material/delete:"):
            store.remove(ws, rid)
            state.forget_run(rid)
            st.rerun()
