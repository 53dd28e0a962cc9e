"""The GraphQL documents the pipeline sends, one `.graphql` file per operation."""

from __future__ import annotations

from functools import cache
from importlib import resources


@cache
def document(operation: str) -> str:
    """The document whose single operation is named ``operation``."""
    path = resources.files("ult_pipeline.target_api") / "graphql" / f"{operation}.graphql"
    if not path.is_file():
        raise KeyError(f"no GraphQL document named {operation!r} in ult_pipeline/target_api/graphql/")
    return path.read_text(encoding="utf-8")
