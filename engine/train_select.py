"""Which training backend ``auto`` would choose, told without importing torch.

The real choice happens when training starts (``engine.train``): unsloth if it imports and
trains, else PEFT. This module only answers the doctor's question cheaply.
"""

from __future__ import annotations

import importlib.util


def describe_auto_backend() -> str:
    have_unsloth = importlib.util.find_spec("unsloth") is not None
    have_peft = importlib.util.find_spec("peft") is not None
    have_torch = importlib.util.find_spec("torch") is not None
    if not have_torch:
        return "none: torch is not installed, training is unavailable"
    if have_unsloth:
        return "auto -> unsloth (installed; CUDA if present, else its CPU backend), peft as fallback"
    if have_peft:
        return "auto -> peft (unsloth is not installed)"
    return "none: neither unsloth nor peft is installed"
