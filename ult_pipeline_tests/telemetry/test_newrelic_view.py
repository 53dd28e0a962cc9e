"""New Relic's server view: the NRQL that asks for it and the parsing of its rows (pure)."""

from __future__ import annotations

import math

import pytest

from ult_pipeline.telemetry.newrelic import operation_from_transaction_name, parse_server_view, server_view_nrql


def test_server_view_nrql_text():
    nrql = server_view_nrql("it's\\svc", 1000, 2000)
    assert nrql == (
        "SELECT count(*) AS 'count', filter(count(*), WHERE error IS true) AS 'errors', "
        "percentile(duration, 95) AS 'p95' FROM Transaction WHERE appName = 'it\\'s\\\\svc' "
        "SINCE 1000 UNTIL 2000 FACET name LIMIT MAX"
    )
    with pytest.raises(ValueError):
        server_view_nrql("x", 2000, 1000)


@pytest.mark.parametrize(
    ("name", "operation"),
    [
        ("WebTransaction/Expressjs/POST//user/myUser", "myUser"),
        ("WebTransaction/Expressjs/POST//graphql/query/myUser", "myUser"),
        ("WebTransaction/Expressjs/POST//graphql/mutation/createUsers", "createUsers"),
        ("WebTransaction/apollo-server/query/myUser/myUser.node", "myUser"),
        ("WebTransaction/apollo-server/query/<anonymous>/users.edges", "users"),
        ("WebTransaction/Nodejs/POST//graphql/query myUser", "myUser"),
        ("OtherTransaction/Custom/job", "job"),
    ],
)
def test_operation_from_transaction_name(name, operation):
    assert operation_from_transaction_name(name) == operation


def test_parse_server_view_tolerates_plain_numbers_and_missing_p95():
    view = parse_server_view(
        [
            {"name": "WebTransaction/Expressjs/POST//user/a", "count": 3, "errors": 0, "p95": 0.5},
            {"name": "WebTransaction/Expressjs/POST//user/b", "count": 1, "errors": None, "p95": None},
        ]
    )
    assert view["a"] == {"count": 3, "errors": 0, "p95_ms": 500.0}
    assert view["b"]["count"] == 1 and view["b"]["errors"] == 0 and math.isnan(view["b"]["p95_ms"])


