"""In-process llama.cpp: one owner thread, continuous batching, streaming, grammars, LoRA."""

from engine.runtime.llama import Completion, Request, Result, Runtime, Sampling

__all__ = ["Completion", "Request", "Result", "Runtime", "Sampling"]
