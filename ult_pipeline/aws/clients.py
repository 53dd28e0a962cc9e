"""boto3 clients with timeouts and retries set, for AWS or a local endpoint (moto)."""

from __future__ import annotations

import boto3
from botocore.config import Config


def client(
    service: str, *, region: str, endpoint_url: str | None = None, connect_timeout_s: float = 5.0,
    read_timeout_s: float = 30.0, max_attempts: int = 5,
):
    config = Config(
        connect_timeout=connect_timeout_s, read_timeout=read_timeout_s,
        retries={"max_attempts": max_attempts, "mode": "standard"},
    )
    return boto3.client(service, region_name=region, endpoint_url=endpoint_url or None, config=config)
