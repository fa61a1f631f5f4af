"""The DuckDB store: one file per data dir, schema from ``migrations``, owned by ``Store``."""

from engine.store.store import QueryResult, Store

__all__ = ["QueryResult", "Store"]
