"""Where the lab keeps what it computes: one cache folder for teachers, runs and uploaded datasets."""

from __future__ import annotations

import os
from pathlib import Path


def default_cache_dir() -> Path:
    """$KDLAB_CACHE, else ~/.cache/distillation-lab."""
    env = os.environ.get("KDLAB_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "distillation-lab"
