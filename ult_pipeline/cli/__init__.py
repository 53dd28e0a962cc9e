"""The `ult` command line."""
