"""Every GraphQL document the project contains validates against the real service's schema.

The schema is read from ../shared (or $ULT_USER_SERVICE_SCHEMA), never copied here.
Documents are found in `.graphql` files and as string literals in Python and k6
JavaScript. Two kinds are not for the user-service and are named so: a deliberately invalid
document in a test (a name starting with `INVALID_`), and a document for another GraphQL API
(New Relic's NerdGraph, Dagster's own UI API) in a name starting with `OTHER_API_`.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from graphql import GraphQLError, build_schema, parse, validate
from graphql.language import OperationDefinitionNode

from ult_pipeline.user_service_schema import find_schema_path

ROOT = Path(__file__).resolve().parents[1]
SEARCHED = [ROOT / "ult_pipeline", ROOT / "k6", ROOT / "ult_pipeline_tests"]
_LOOKS_LIKE_DOCUMENT = re.compile(r"^\s*(query|mutation|subscription|fragment)\b|^\s*\{\s*\w", re.S)
_JS_TEMPLATE = re.compile(r"`([^`]*)`", re.S)


def _schema():
    path = find_schema_path()
    if path is None or not path.is_file():
        pytest.skip("../shared/user-service/schema.graphql is absent; set ULT_USER_SERVICE_SCHEMA to run the contract")
    return build_schema(path.read_text(encoding="utf-8"))


def _python_strings(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    invalid_on_purpose: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id.startswith(("INVALID_", "OTHER_API_")) for t in node.targets
        ):
            invalid_on_purpose.update(id(n) for n in ast.walk(node.value))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in invalid_on_purpose:
            yield node.lineno, node.value


def _js_strings(path: Path):
    text = path.read_text(encoding="utf-8")
    for match in _JS_TEMPLATE.finditer(text):
        yield text.count("\n", 0, match.start()) + 1, match.group(1)


def _documents():
    found = []
    for base in SEARCHED:
        if not base.exists():
            continue
        for path in sorted(base.rglob("*")):
            if path.suffix == ".graphql":
                found.append((path, 1, path.read_text(encoding="utf-8")))
            elif path.suffix == ".py":
                found += [(path, line, s) for line, s in _python_strings(path) if _is_document(s)]
            elif path.suffix == ".js":
                found += [(path, line, s) for line, s in _js_strings(path) if _is_document(s)]
    return found


def _is_document(text: str) -> bool:
    if not _LOOKS_LIKE_DOCUMENT.match(text) or "${" in text:
        return False
    try:
        document = parse(text)
    except GraphQLError:
        return False
    return any(isinstance(d, OperationDefinitionNode) for d in document.definitions)


DOCUMENTS = _documents()


def test_the_project_contains_graphql_documents():
    # Guards the discovery itself: a broken finder would make the contract pass vacuously.
    assert len(DOCUMENTS) >= 1


@pytest.mark.parametrize(
    "path,line,document", DOCUMENTS, ids=[f"{p.relative_to(ROOT)}:{line}" for p, line, _ in DOCUMENTS]
)
def test_document_validates_against_the_user_service_schema(path, line, document):
    errors = validate(_schema(), parse(document))
    assert not errors, f"{path.relative_to(ROOT)}:{line}: " + "; ".join(e.message for e in errors)
