"""What the offline probes share: a finished run's home, copied and opened."""
from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path
from typing import Any

from engine.api import Engine
from engine.recipes import Recipe
from engine.tasks import get_domain


def open_copy(src: str) -> tuple[Path, Engine, int, Recipe, Any]:
    """A copy of the home ``src`` (its socket left behind, so a live run's home can be copied),
    opened: the copy's path, the engine, its newest run, that run's recipe and task domain. An
    adapter recorded at a path that no longer exists (written under another home: a benchmark's
    temporary one) is recorded at the copy's own ``runs/...`` file. The copy (a run's home is some
    660 MB) is removed when the process exits."""
    home = Path(tempfile.mkdtemp(prefix="swarm-probe-")) / "home"
    atexit.register(shutil.rmtree, home.parent, ignore_errors=True)
    shutil.copytree(src, home, ignore=shutil.ignore_patterns("*.sock"))
    eng = Engine.open(home)
    q = eng.store.execute
    for aid, path in q("select id, path from adapters"):
        if not Path(path).exists() and "/runs/" in path:
            q("update adapters set path = ? where id = ?", [str(home / path[path.index("runs/"):]), aid])
    run_id = eng.store.execute("select max(id) from runs")[0][0]
    rec = eng.run_info(run_id).recipe
    return home, eng, run_id, rec, get_domain(rec.task.domain)
