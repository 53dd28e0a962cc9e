"""Parse and validation results per query text, bounded (validation is the main CPU cost
per request); plus what each document needs at request time: its operation names and the
deprecated fields it selects."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    DocumentNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    TypeInfo,
    TypeInfoVisitor,
    Visitor,
    parse,
    validate,
    visit,
)

ANONYMOUS = "anonymous"


@dataclass
class CachedDocument:
    document: DocumentNode
    validation_errors: list[GraphQLError] | None = None
    deprecated_fields: tuple[str, ...] = ()
    operation_names: tuple[str | None, ...] = field(default=())


def operation_names(document: DocumentNode) -> tuple[str | None, ...]:
    return tuple(
        definition.name.value if definition.name else None
        for definition in document.definitions
        if isinstance(definition, OperationDefinitionNode)
    )


class _DeprecatedFieldCollector(Visitor):
    def __init__(self, type_info: TypeInfo) -> None:
        super().__init__()
        self.type_info = type_info
        self.found: dict[str, None] = {}

    def enter_field(self, node: Any, *_args: Any) -> None:
        definition = self.type_info.get_field_def()
        parent = self.type_info.get_parent_type()
        if definition is not None and definition.deprecation_reason is not None and parent is not None:
            self.found.setdefault(f"{parent.name}.{node.name.value}", None)


def deprecated_fields(schema: GraphQLSchema, document: DocumentNode) -> tuple[str, ...]:
    type_info = TypeInfo(schema)
    collector = _DeprecatedFieldCollector(type_info)
    visit(document, TypeInfoVisitor(type_info, collector))
    return tuple(collector.found)


class DocumentCache:
    """LRU of parsed, validated documents keyed by the query text."""

    def __init__(self, schema: GraphQLSchema, max_entries: int = 512) -> None:
        self.schema = schema
        self.max_entries = max_entries
        self._entries: OrderedDict[str, CachedDocument] = OrderedDict()

    def lookup(self, query: str) -> CachedDocument:
        entry = self._entries.get(query)
        if entry is not None:
            self._entries.move_to_end(query)
            return entry
        document = parse(query)
        entry = CachedDocument(document, operation_names=operation_names(document))
        self._entries[query] = entry
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return entry

    def find(self, query: str) -> CachedDocument | None:
        return self._entries.get(query)

    # ariadne hooks -------------------------------------------------------
    def parse_hook(self, _context: Any, data: dict) -> DocumentNode:
        return self.lookup(data["query"]).document

    def validate_hook(
        self, schema: GraphQLSchema, document_ast: DocumentNode, rules: Any = None, max_errors: Any = None, **kwargs: Any
    ) -> list[GraphQLError]:
        text = document_ast.loc.source.body if document_ast.loc else None
        entry = self._entries.get(text) if text is not None else None
        if entry is None or entry.document is not document_ast or schema is not self.schema:
            return validate(schema, document_ast, rules=rules, max_errors=max_errors, **kwargs)
        if entry.validation_errors is None:
            entry.validation_errors = validate(schema, document_ast, rules=rules, max_errors=max_errors, **kwargs)
            if not entry.validation_errors:
                entry.deprecated_fields = deprecated_fields(schema, document_ast)
        return entry.validation_errors


def request_operation_name(body: Any, cache: DocumentCache) -> str:
    """The request's operationName, else its single operation's name, else `anonymous`."""
    if not isinstance(body, dict):
        return ANONYMOUS
    name = body.get("operationName")
    if isinstance(name, str) and name:
        return name
    query = body.get("query")
    if not isinstance(query, str):
        return ANONYMOUS
    try:
        names = cache.lookup(query).operation_names
    except GraphQLError:
        return ANONYMOUS
    if len(names) == 1 and names[0]:
        return names[0]
    return ANONYMOUS
