"""The target user-service's GraphQL API, as the pipeline calls it."""
