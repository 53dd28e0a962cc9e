"""Is the service's own telemetry good enough? k6's view against the server's, per operation."""
