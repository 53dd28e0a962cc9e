"""One partition per user-service image (a build): tag plus short digest."""

import dagster as dg

builds_partitions = dg.DynamicPartitionsDefinition(name="builds")
