"""The run store: every run's config, status, history, metrics and weights, on disk.

One SQLite database (the standard library's, in WAL mode: several processes may write) plus one
safetensors file per run, under `<cache>/runs/`:

    runs.db                     table `runs` (one row per run) and `workspace_runs`
    artifacts/<run id>.safetensors   the tensors of its result (weights, logits, ...)

A run row holds its kind, config (JSON), key (identical runs share it), status (queued, running,
finished, stopped, failed, interrupted), the encoded result document, headline metrics, the
dataset's fingerprint, timing and the code version. A **workspace** (an id carried in the app's
URL) is a list of runs with the names its user gave them; one run can be in several workspaces.

Damage is contained: a database that cannot be opened or fails SQLite's quick check is moved
aside (`runs.db.damaged-<time>`) and a fresh one started, with a notice saying so; a missing or
unreadable artifact makes `load_result` raise `ArtifactUnreadable` for that run alone.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from kdcore import codec
from kdcore.runs import RunSpec, canonical_json

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    key TEXT NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    config TEXT NOT NULL,
    dataset TEXT,
    data_seed INTEGER,
    dataset_fingerprint TEXT,
    summary TEXT,
    history TEXT,
    result TEXT,
    error TEXT,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    seconds REAL,
    code_version TEXT
);
CREATE INDEX IF NOT EXISTS runs_key ON runs(key, status);
CREATE TABLE IF NOT EXISTS workspace_runs (
    workspace TEXT NOT NULL,
    run_id TEXT NOT NULL,
    name TEXT,
    added REAL NOT NULL,
    PRIMARY KEY (workspace, run_id)
);
"""

ACTIVE = ("queued", "running")
ENDED = ("finished", "stopped", "failed", "interrupted")


class ArtifactUnreadable(RuntimeError):
    """A run's stored tensors are missing or damaged (the rest of the store is fine)."""


def code_version() -> str:
    """A short hash of the engine's source: runs record which code made them."""
    h = hashlib.sha256()
    root = Path(__file__).resolve().parent
    for p in sorted(root.glob("*.py")):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:12]


_FINGERPRINTS: dict[tuple[str, int], str] = {}   # (name, split seed) -> fingerprint: the same data


def dataset_fingerprint(ds) -> str:
    """A hash of a dataset's splits (its content, not its name)."""
    fp = _FINGERPRINTS.get((ds.name, ds.seed))
    if fp is None:
        h = hashlib.sha256(ds.name.encode())
        for split in ("train", "val", "test"):
            X, y = ds.split(split)
            h.update(X.contiguous().numpy().tobytes())
            h.update(y.contiguous().numpy().tobytes())
        fp = _FINGERPRINTS[(ds.name, ds.seed)] = h.hexdigest()[:16]
    return fp


@dataclass
class RunRecord:
    id: str
    key: str
    kind: str
    name: str
    status: str
    config: dict
    dataset: str | None
    data_seed: int | None
    dataset_fingerprint: str | None
    summary: dict
    history: dict
    error: str | None
    created: float
    started: float | None
    finished: float | None
    seconds: float | None
    code_version: str | None
    workspace_name: str | None = None   # the name this run has in the workspace it was listed for

    @property
    def spec(self) -> RunSpec:
        return RunSpec(self.kind, self.config)

    @property
    def display_name(self) -> str:
        return self.workspace_name or self.name


def default_store_dir() -> Path:
    from kdcore.paths import default_cache_dir
    return default_cache_dir() / "runs"


class RunStore:
    """The run store under `root` (default `<cache>/runs`). Safe to share between threads and
    processes: each thread gets its own SQLite connection."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root is not None else default_store_dir()
        self.db_path = self.root / "runs.db"
        self.artifacts = self.root / "artifacts"
        self.notices: list[str] = []     # what went wrong at opening, for the UI to say
        self._local = threading.local()
        self._version = code_version()
        self.root.mkdir(parents=True, exist_ok=True)
        self.artifacts.mkdir(exist_ok=True)
        self._open_checked()

    # ---------------------------------------------------------------- connections

    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.db_path, timeout=30, isolation_level=None, check_same_thread=False)
        con.row_factory = sqlite3.Row
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=NORMAL")
        con.execute("PRAGMA busy_timeout=30000")
        return con

    def _open_checked(self) -> None:
        try:
            con = self._connect()
            ok = con.execute("PRAGMA quick_check").fetchone()[0]
            if ok != "ok":
                raise sqlite3.DatabaseError(ok)
            con.executescript(SCHEMA)
            con.close()
        except sqlite3.DatabaseError as err:
            self._move_aside(err)

    def _move_aside(self, err: Exception) -> None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        aside = self.db_path.with_name(f"runs.db.damaged-{stamp}")
        for suffix in ("", "-wal", "-shm"):
            p = Path(str(self.db_path) + suffix)
            if p.exists():
                os.replace(p, Path(str(aside) + suffix))
        self.notices.append(f"The run database could not be read ({err}); it was moved aside to "
                            f"{aside.name} and a new one started. Earlier runs are not listed.")
        con = self._connect()
        con.executescript(SCHEMA)
        con.close()

    @property
    def _con(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            con = self._local.con = self._connect()
        return con

    def _row(self, row, workspace_name=None) -> RunRecord:
        return RunRecord(row["id"], row["key"], row["kind"], row["name"], row["status"],
                         json.loads(row["config"]), row["dataset"], row["data_seed"],
                         row["dataset_fingerprint"], json.loads(row["summary"] or "{}"),
                         json.loads(row["history"] or "{}"), row["error"], row["created"], row["started"],
                         row["finished"], row["seconds"], row["code_version"], workspace_name)

    # ---------------------------------------------------------------- writing

    def create(self, spec: RunSpec, name: str, status: str = "queued") -> RunRecord:
        run_id = uuid.uuid4().hex[:16]
        cfg = spec.config
        self._con.execute(
            "INSERT INTO runs (id, key, kind, name, status, config, dataset, data_seed, created, code_version)"
            " VALUES (?,?,?,?,?,?,?,?,?,?)",
            (run_id, spec.key, spec.kind, name, status, canonical_json(cfg), cfg.get("dataset"),
             cfg.get("data_seed"), time.time(), self._version))
        return self.get(run_id)

    def set_status(self, run_id: str, status: str, error: str | None = None) -> None:
        now = time.time()
        if status == "running":   # (again, after a restart: the old "interrupted" message goes)
            self._con.execute("UPDATE runs SET status=?, started=?, error=NULL WHERE id=?", (status, now, run_id))
        elif status == "queued":
            self._con.execute("UPDATE runs SET status=?, error=NULL, finished=NULL WHERE id=?", (status, run_id))
        else:
            self._con.execute("UPDATE runs SET status=?, error=COALESCE(?, error), finished=? WHERE id=?",
                              (status, error, now if status in ENDED else None, run_id))

    def save_result(self, run_id: str, result, status: str, seconds: float, summary: dict | None = None,
                    history: dict | None = None, fingerprint: str | None = None) -> None:
        """Store a run's result (tensors to its safetensors file first, then the row)."""
        from safetensors.torch import save_file
        doc, tensors = codec.encode(result)
        path = self.artifacts / f"{run_id}.safetensors"
        tmp = path.with_suffix(".tmp")
        save_file(tensors, str(tmp), metadata={"run": run_id})
        os.replace(tmp, path)
        self._con.execute(
            "UPDATE runs SET status=?, result=?, summary=?, history=?, dataset_fingerprint=?, seconds=?,"
            " finished=?, code_version=? WHERE id=?",
            (status, json.dumps(doc), json.dumps(summary or {}, default=float),
             json.dumps(history or {}, default=float), fingerprint, seconds, time.time(), self._version, run_id))

    def link(self, workspace: str, run_id: str, name: str | None = None) -> None:
        """List a run in a workspace (no-op if it is there already)."""
        self._con.execute("INSERT OR IGNORE INTO workspace_runs (workspace, run_id, name, added) VALUES (?,?,?,?)",
                          (workspace, run_id, name, time.time()))

    def rename(self, workspace: str, run_id: str, name: str) -> None:
        self._con.execute("UPDATE workspace_runs SET name=? WHERE workspace=? AND run_id=?",
                          (name.strip(), workspace, run_id))

    def remove(self, workspace: str, run_id: str) -> None:
        """Take a run off a workspace; when no workspace lists it any more, delete it and its file."""
        con = self._con
        con.execute("DELETE FROM workspace_runs WHERE workspace=? AND run_id=?", (workspace, run_id))
        left = con.execute("SELECT COUNT(*) FROM workspace_runs WHERE run_id=?", (run_id,)).fetchone()[0]
        row = con.execute("SELECT status FROM runs WHERE id=?", (run_id,)).fetchone()
        if left == 0 and row is not None and row["status"] in ENDED:
            con.execute("DELETE FROM runs WHERE id=?", (run_id,))
            (self.artifacts / f"{run_id}.safetensors").unlink(missing_ok=True)

    def mark_interrupted(self) -> list[RunRecord]:
        """Runs left queued or running by a server that ended: mark them interrupted and return them."""
        rows = self._con.execute(f"SELECT * FROM runs WHERE status IN {ACTIVE}").fetchall()
        for r in rows:
            self.set_status(r["id"], "interrupted", "the server stopped before this run finished")
        return [self._row(r) for r in rows]

    # ---------------------------------------------------------------- reading

    def get(self, run_id: str) -> RunRecord | None:
        row = self._con.execute("SELECT * FROM runs WHERE id=?", (run_id,)).fetchone()
        return self._row(row) if row else None

    def find_finished(self, key: str) -> RunRecord | None:
        row = self._con.execute("SELECT * FROM runs WHERE key=? AND status='finished' ORDER BY finished DESC LIMIT 1",
                                (key,)).fetchone()
        return self._row(row) if row else None

    def workspace_runs(self, workspace: str, kind: str | None = None, dataset: str | None = None,
                       data_seed: int | None = None) -> list[RunRecord]:
        """The runs of a workspace, newest first (optionally of one kind and dataset)."""
        q = ("SELECT r.*, w.name AS wname FROM runs r JOIN workspace_runs w ON w.run_id = r.id "
             "WHERE w.workspace=?")
        args: list = [workspace]
        for col, val in (("r.kind", kind), ("r.dataset", dataset), ("r.data_seed", data_seed)):
            if val is not None:
                q += f" AND {col}=?"
                args.append(val)
        q += " ORDER BY w.added DESC, r.created DESC"
        return [self._row(r, r["wname"]) for r in self._con.execute(q, args).fetchall()]

    def has_result(self, run_id: str) -> bool:
        row = self._con.execute("SELECT result IS NOT NULL AS stored FROM runs WHERE id=?", (run_id,)).fetchone()
        return bool(row and row["stored"])

    def encoded(self, run_id: str) -> tuple[object, dict]:
        """A stored result as it is on disk: (JSON document, tensors). Raises ArtifactUnreadable."""
        row = self._con.execute("SELECT result, name FROM runs WHERE id=?", (run_id,)).fetchone()
        if row is None or row["result"] is None:
            raise ArtifactUnreadable(f"run {run_id} has no stored result")
        path = self.artifacts / f"{run_id}.safetensors"
        try:
            from safetensors.torch import load_file
            tensors = load_file(str(path))
        except FileNotFoundError:
            raise ArtifactUnreadable(f"the weights of run “{row['name']}” are missing ({path.name}); "
                                     "its settings and metrics are still listed") from None
        except Exception as err:
            raise ArtifactUnreadable(f"the weights of run “{row['name']}” cannot be read ({err})") from err
        return json.loads(row["result"]), tensors

    def load_result(self, run_id: str, ctx=None):
        """The decoded result of a stored run (ArtifactUnreadable if its file is missing or damaged)."""
        doc, tensors = self.encoded(run_id)
        try:
            return codec.decode(doc, tensors, ctx)
        except codec.CodecError as err:
            raise ArtifactUnreadable(f"run {run_id} cannot be rebuilt: {err}") from err

    def artifact_path(self, run_id: str) -> Path:
        return self.artifacts / f"{run_id}.safetensors"


def runs_frame(records: list[RunRecord]):
    """The Runs page's table: one row per run, headline metrics as columns (accuracies in %)."""
    import pandas as pd
    from kdcore.runs import kinds
    titles = {name: k.title for name, k in kinds().items()}
    rows = []
    for r in records:
        s = r.summary
        rows.append({
            "id": r.id, "name": r.display_name, "kind": titles.get(r.kind, r.kind), "status": r.status,
            "dataset": r.dataset, "seed": r.data_seed,
            "accuracy_pct": 100 * s["accuracy"] if "accuracy" in s else None,
            "gain_pts": s.get("gain_pts"),
            "params": s.get("params"), "bytes": s.get("bytes"),
            "seconds": r.seconds,
            "created": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.created)),
            "code_version": r.code_version, "dataset_fingerprint": r.dataset_fingerprint,
            "error": r.error,
        })
    frame = pd.DataFrame(rows, columns=["id", "name", "kind", "status", "dataset", "seed", "accuracy_pct",
                                        "gain_pts", "params", "bytes", "seconds", "created", "code_version",
                                        "dataset_fingerprint", "error"])
    for col in ("accuracy_pct", "gain_pts", "params", "bytes", "seconds"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce")   # missing values as blanks, not "None"
    return frame
