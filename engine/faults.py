"""Crash points for the crash-safety tests: ``SWARM_KILL_AT=NAME`` SIGKILLs the process there.

Each call names a point of a round (``generate:solve``, ``write:debate``, ``train``, ...). With
the variable unset (always, outside those tests) a checkpoint is a dictionary lookup.
"""

from __future__ import annotations

import os
import signal


def checkpoint(name: str) -> None:
    if os.environ.get("SWARM_KILL_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
