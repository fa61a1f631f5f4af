"""Where swarm keeps its files: one data dir (the "home") holding the store, adapters and caches.

Resolution order: an explicit ``--home``, then ``$SWARM_HOME``, then the platformdirs user data
dir. Recipes ship in the repository's ``recipes/`` folder beside the packages, overridable
with ``$SWARM_RECIPES``.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

STORE_FILE = "swarm.duckdb"


def home_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Return (and create) the data directory."""
    if explicit:
        path = Path(explicit)
    elif os.environ.get("SWARM_HOME"):
        path = Path(os.environ["SWARM_HOME"])
    else:
        path = Path(platformdirs.user_data_dir("swarm", appauthor=False))
    path = path.expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_root(home: Path) -> Path:
    """Caches of what a machine computes once (dequantized bases, converted weights, measurements):
    ``$SWARM_CACHE`` if set (shared by several data dirs), else ``HOME/cache``."""
    return Path(os.environ["SWARM_CACHE"]) if os.environ.get("SWARM_CACHE") else home / "cache"


def _cpuinfo(key: str) -> str | None:
    """The first ``key`` line's value in ``/proc/cpuinfo``; None where there is none."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(key):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what ``platform`` knows."""
    import platform

    return _cpuinfo("model name") or platform.processor() or platform.machine()


def cpu_flags() -> set[str]:
    """The CPU's feature flags as the kernel lists them (``/proc/cpuinfo``); empty where unknown."""
    return set((_cpuinfo("flags") or "").split())


def store_path(home: Path) -> Path:
    return home / STORE_FILE


def recipes_dir() -> Path:
    """The folder of bundled recipes (``$SWARM_RECIPES`` overrides)."""
    env = os.environ.get("SWARM_RECIPES")
    if env:
        return Path(env).expanduser().resolve()
    return Path(__file__).resolve().parent.parent / "recipes"
