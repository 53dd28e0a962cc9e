"""Rolling the load-test environment to an image."""
