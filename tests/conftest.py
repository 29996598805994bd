"""Shared fixtures: private cache and data folders, datasets, a trained digits teacher, and
`open_page` for the AppTests of pages.

Every test session gets its own KDLAB_CACHE and KDLAB_DATA under pytest's temp
folder, so tests never read or write the user's ~/.cache. MNIST and
Fashion-MNIST come from the official files in ../shared/datasets (copied into
the data root, since torchvision writes beside them); tests that need them skip
with a reason where those files are absent.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("KDLAB_EXECUTOR", "threads")   # AppTests' job runner: worker threads, no processes
SHARED_DATASETS = Path(os.environ.get("KDLAB_SHARED_DATASETS", ROOT.parent / "shared" / "datasets"))

torch.set_num_threads(min(2, torch.get_num_threads()))
# The app's job runner runs its workers as threads in tests (no process start-up per AppTest);
# the browser tests start a real server, which uses worker processes as a user's does.
os.environ.setdefault("KDLAB_EXECUTOR", "threads")
# AppTests look at a page's states one script run at a time (a run watched live, then its result):
# the page does not wait for short runs there. The browser tests use the app's default (3 s).
os.environ.setdefault("KDLAB_SUBMIT_WAIT", "0")


@pytest.fixture(scope="session", autouse=True)
def private_dirs(tmp_path_factory):
    cache = tmp_path_factory.mktemp("kdlab-cache")
    data = tmp_path_factory.mktemp("kdlab-data")
    old = {k: os.environ.get(k) for k in ("KDLAB_CACHE", "KDLAB_DATA")}
    os.environ["KDLAB_CACHE"], os.environ["KDLAB_DATA"] = str(cache), str(data)
    yield {"cache": cache, "data": data}
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def copy_torchvision_files(folder: str, data_root: Path) -> Path:
    """Copy <shared>/<folder>/raw into data_root, or skip the test if the files are not here."""
    src = SHARED_DATASETS / folder / "raw"
    if not src.is_dir():
        pytest.skip(f"{folder} files not found in {src} (set KDLAB_SHARED_DATASETS to their folder)")
    dst = data_root / folder / "raw"
    # file by file: a page that tried to load the dataset before (and failed: no internet) may have left
    # an empty raw/ folder behind, which must not be taken for the copied files
    if any(not (dst / f.name).exists() for f in src.iterdir()):
        shutil.copytree(src, dst, dirs_exist_ok=True)
    return data_root


@pytest.fixture(scope="session")
def mnist_root(private_dirs):
    return copy_torchvision_files("MNIST", private_dirs["data"])


@pytest.fixture(scope="session")
def fashion_root(private_dirs):
    return copy_torchvision_files("FashionMNIST", private_dirs["data"])


@pytest.fixture(scope="session")
def digits():
    from kdcore.data import load_dataset
    return load_dataset("digits", 0)


@pytest.fixture(scope="session")
def digits_teacher(digits, private_dirs):
    """The default digits teacher (trained once per test session, ~4 s), through the disk cache."""
    from kdcore.presets import default_teacher_spec
    from kdcore.teachers import TeacherCache
    return TeacherCache(private_dirs["cache"] / "teachers").get_or_train(default_teacher_spec("digits", 0), digits)


def settle_runs(at, timeout: float = 240.0):
    """Rerun an AppTest until no run of its workspace is queued or running (runs train on the
    job runner's workers, not in the script run), then once more to draw the results."""
    from kdcore.store import ACTIVE, RunStore
    deadline = time.monotonic() + timeout
    store = RunStore()
    while True:
        ws = at.session_state["ws"] if "ws" in at.session_state else None
        busy = [r for r in store.workspace_runs(ws) if r.status in ACTIVE] if ws else []
        if not busy:
            return at.run()
        if time.monotonic() > deadline:
            raise TimeoutError(f"runs still active after {timeout:.0f} s: {[r.name for r in busy]}")
        time.sleep(0.2)


@pytest.fixture
def settle():
    return settle_runs


APPTEST_TIMEOUT = 300  # seconds per script run: torch imports slowly on a cold start


@pytest.fixture
def open_page():
    """`open_page("pages/x.py", session={...})`: the app started through app.py (its sidebar and
    navigation, as a user gets it), with session-state values set before its first run, then
    switched to the page (or left on Home when no page is given)."""
    from streamlit.testing.v1 import AppTest

    def open_(page: str | None = None, session: dict | None = None) -> AppTest:
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=APPTEST_TIMEOUT)
        for k, v in (session or {}).items():
            at.session_state[k] = v
        at.run()
        if page is not None:
            at.switch_page(page)
            at.run()
        return at

    return open_


@pytest.fixture
def wait_for_runs():
    """`wait_for_runs(at)`: the same as `settle` (wait until the workspace's runs ended, rerun)."""
    return settle_runs
