"""Files of the repository that the pipeline needs at run time, found in a checkout or an install.

`k6/` (the suite k6 runs), `dagster.yaml`, `workspace.yaml` and `deploy/production/dagster.yaml`
live at the repository's top level. An editable install and a checkout read them there; a
wheel (`pip install .`, a container build) carries copies under `ult_pipeline/_shipped/`, same
relative paths (setup.py's `SHIPPED`).
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def shipped(relative: str) -> Path:
    """The path of ``relative`` (e.g. "k6", "dagster.yaml"): the installed copy if there is one, else the checkout's."""
    installed = _PACKAGE / "_shipped" / relative
    return installed if installed.exists() else _PACKAGE.parent / relative
