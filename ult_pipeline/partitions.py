"""One partition per user-service image (a build), keyed by `Build.key` (ult_pipeline.build)."""

import dagster as dg

builds_partitions = dg.DynamicPartitionsDefinition(name="builds")
