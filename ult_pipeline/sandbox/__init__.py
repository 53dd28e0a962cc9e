"""The sandbox: an embedded PostgreSQL and a sandbox user-service on loopback."""
