"""One error family for everything the engine raises on purpose.

Library errors (llama.cpp, DuckDB, tomllib, pydantic, torch) are translated at the boundary
with ``raise ... from e`` so callers catch ``EngineError`` and show ``str(e)``: one clear line
that says what failed and where.
"""


class EngineError(Exception):
    """Base class: a failure the user can act on; ``str(e)`` is the message to show."""


class RecipeError(EngineError):
    """A recipe file is missing, not TOML, or fails validation (names file, key and reason)."""


class ModelError(EngineError):
    """A model file is missing, not GGUF, truncated, or llama.cpp refused it (names the path)."""


class StoreError(EngineError):
    """The DuckDB store cannot be opened, is from a newer schema, is locked, or refused a query."""


class SandboxError(EngineError):
    """The sandbox itself could not run (not: the code inside it failed; that is a result)."""


class TrainingError(EngineError):
    """Training, export or the export check failed; the previous adapter stays in use."""


class RuntimeClosed(EngineError):
    """A request was submitted to, or cancelled by, a runtime that is shutting down."""


class RuntimeFailed(EngineError):
    """The model runtime's owner thread failed; every pending and later request gets this."""
