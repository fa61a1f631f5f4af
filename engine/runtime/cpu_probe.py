"""Whether llama.cpp's extra CPU buffer types run on this machine.

llama.cpp built for the machine it compiled on (``GGML_NATIVE``) uses AMX tile instructions
for quantized matrix products on a CPU that lists ``amx_tile``, and asks the kernel for
permission first. Some virtual machines grant it and still fault on the first tile
instruction (measured on a Firecracker guest, kernel 6.18, Xeon with ``amx_tile``:
``tilezero`` raised SIGILL inside ``ggml_backend_amx_mul_mat``), which kills the process with
no Python error. So where the CPU lists AMX, a child process decodes a few tokens of the
built-in model once per process; if it dies, models load without the extra buffer types
(``use_extra_bufts = false``; llama-server's ``--no-repack``): the same weights, multiplied by
the plain CPU kernels. ``$SWARM_CPU_EXTRA_BUFFERS`` (``1``/``0``) skips the probe.

Run as ``python -m engine.runtime.cpu_probe MODEL.gguf`` it is the probe itself: a decode loaded the
way every model is (``engine.runtime.llama.Logits``), the extra buffer types on or off as
``$SWARM_CPU_EXTRA_BUFFERS`` says (the parent sets ``1``).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from engine.paths import cpu_flags

log = logging.getLogger(__name__)

_lock = threading.Lock()
_usable: bool | None = None
#: why the last probe decided as it did (for ``swarm doctor``)
reason = "not probed yet"


def extra_buffers_usable() -> bool:
    """True unless this CPU lists AMX and a child process decoding with it crashed (memoised)."""
    global _usable, reason
    with _lock:
        if _usable is not None:
            return _usable
        env = os.environ.get("SWARM_CPU_EXTRA_BUFFERS", "").strip()
        if env in ("0", "1"):
            _usable, reason = env == "1", f"$SWARM_CPU_EXTRA_BUFFERS={env}"
        elif "amx_tile" not in cpu_flags():
            _usable, reason = True, "the CPU lists no AMX: nothing to probe"
        else:
            _usable, reason = _probe()
            if not _usable:
                log.info("llama.cpp: %s; models load without the extra CPU buffer types", reason)
        return _usable


def _probe() -> tuple[bool, str]:
    from engine.models import resolve_model

    try:
        model = resolve_model("builtin:smollm2-135m")
    except Exception as e:  # noqa: BLE001 - no built-in model: nothing quantized to probe with
        return True, f"no built-in model to probe AMX with ({e})"
    try:
        proc = subprocess.run([sys.executable, "-m", "engine.runtime.cpu_probe", str(model)], capture_output=True,
                              timeout=120, cwd=Path(__file__).resolve().parents[2],
                              env={**os.environ, "SWARM_CPU_EXTRA_BUFFERS": "1"})
    except subprocess.TimeoutExpired:
        return False, "the AMX probe (a decode of the built-in model) hung for 120 s"
    if proc.returncode == 0:
        return True, "the CPU lists AMX and a decode with it ran"
    if proc.returncode < 0:
        name = signal.Signals(-proc.returncode).name
        return False, f"the CPU lists AMX but a decode with it died of {name} (a virtual machine without AMX state?)"
    return False, f"the AMX probe failed (exit {proc.returncode}): {proc.stderr.decode(errors='replace')[-300:]}"


if __name__ == "__main__":
    from engine.runtime.llama import Logits

    with Logits(sys.argv[1], n_ctx=64, n_threads=1) as m:
        m.of(m.tokenize("1 + 2 = 3. 4 + 5 = 9. 7 + 1 ="))
