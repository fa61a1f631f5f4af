"""Training between rounds: dataset from the store, LoRA backends, GGUF adapter export.

Nothing here imports torch at module level; the heavy work runs in a separate process
(``engine.train.worker``) so the console stays responsive, unsloth's patching of
transformers stays out of the engine's process, a crash cannot take the run with it, and a
cancel is a kill.
"""
