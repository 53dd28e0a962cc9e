"""Where the real user-service's GraphQL schema (SDL) is read from.

The schema belongs to the user-service, not to this project: it is read from the
shared folder beside the checkout (or from ``ULT_USER_SERVICE_SCHEMA``), never copied.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from ult_pipeline.settings import setting

ENV_VAR = "ULT_USER_SERVICE_SCHEMA"
_RELATIVE = Path("shared") / "user-service" / "schema.graphql"


class SchemaNotFoundError(FileNotFoundError):
    pass


def find_schema_path() -> Path | None:
    """The SDL file, or None when neither the env var nor a shared folder names one."""
    configured = setting(os.environ, ENV_VAR)
    if configured:
        return Path(configured)
    starts = [Path.cwd(), Path(__file__).resolve().parent]
    for start in starts:
        for folder in [start, *start.parents]:
            candidate = folder / _RELATIVE
            if candidate.is_file():
                return candidate
    return None


def schema_path() -> Path:
    path = find_schema_path()
    if path is None or not path.is_file():
        raise SchemaNotFoundError(
            f"user-service schema not found (looked at ${ENV_VAR} and ../{_RELATIVE} above "
            f"the working directory and the package); set {ENV_VAR} to the path of schema.graphql"
        )
    return path


@lru_cache(maxsize=4)
def _read(path: str) -> str:
    return Path(path).read_text(encoding="utf-8")


def schema_sdl() -> str:
    return _read(str(schema_path()))
