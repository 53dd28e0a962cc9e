"""`python -m ult_pipeline.sandbox_service --port PORT --dsn DSN ...`

The API key comes only from $ULT_SANDBOX_API_KEY (never the command line, never logged).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

import psycopg

from .config import ServiceConfig, redact_dsn
from .knobs import ROSTER_WRITES_CHOICES, ROSTER_WRITES_LOCKED, parse_assignments

API_KEY_ENV = "ULT_SANDBOX_API_KEY"
DSN_ENV = "ULT_SANDBOX_SERVICE_DSN"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ult_pipeline.sandbox_service",
        description=f"Sandbox KidsLoop user-service. The API key is read from ${API_KEY_ENV}.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--dsn", default=None, help=f"PostgreSQL DSN (default: ${DSN_ENV})")
    parser.add_argument("--db-schema", default="public")
    parser.add_argument("--pool-size", type=int, default=10)
    # "extend": the sandbox passes one flag per operation; plain nargs would keep only the last one.
    parser.add_argument("--latency-ms", nargs="*", action="extend", default=[], metavar="OP=MS")
    parser.add_argument("--latency-pct", nargs="*", action="extend", default=[], metavar="OP=PCT")
    parser.add_argument("--no-telemetry", nargs="*", action="extend", default=[], metavar="OP")
    parser.add_argument(
        "--roster-writes", choices=ROSTER_WRITES_CHOICES, default=ROSTER_WRITES_LOCKED,
        help="locked (default): concurrent roster writes are safe; unlocked: read-modify-write without a lock "
        "as the real service 4.5.0, so parallel writes to one class lose acknowledged writes",
    )
    parser.add_argument("--log-level", default="info")
    return parser


def config_from_args(args: argparse.Namespace, environ: dict[str, str]) -> ServiceConfig:
    api_key = environ.get(API_KEY_ENV, "")
    if not api_key:
        raise SystemExit(f"error: ${API_KEY_ENV} is not set; the sandbox needs an API key to accept admin calls")
    dsn = args.dsn or environ.get(DSN_ENV)
    if not dsn:
        raise SystemExit(f"error: no database: pass --dsn or set ${DSN_ENV}")
    try:
        return ServiceConfig(
            dsn=dsn,
            api_key=api_key,
            db_schema=args.db_schema,
            latency_ms=parse_assignments(args.latency_ms, what="--latency-ms"),
            latency_pct=parse_assignments(args.latency_pct, what="--latency-pct"),
            no_telemetry=frozenset(args.no_telemetry),
            pool_size=args.pool_size,
            roster_writes=args.roster_writes,
        )
    except ValueError as error:
        raise SystemExit(f"error: {error}") from None


def check_database(dsn: str) -> None:
    try:
        with psycopg.connect(dsn, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise SystemExit(f"error: database unreachable at {redact_dsn(dsn)}: {reason}") from None


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    config = config_from_args(args, dict(os.environ))
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    check_database(config.dsn)

    import uvicorn

    from .app import create_app

    uvicorn.run(
        create_app(config),
        host=args.host,
        port=args.port,
        workers=1,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level=args.log_level,
        # A restart (deploy, recreate wipe) must not wait on a load generator's open requests.
        timeout_graceful_shutdown=2,
    )


if __name__ == "__main__":
    sys.exit(main())
