"""Direct access to the target's PostgreSQL: the load-test marker and the guarded wipe."""
