"""The load test: the k6 runner, its results and their ingestion."""
