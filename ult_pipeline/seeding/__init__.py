"""The seeded dataset: profiles, deterministic generation, the API call plan, identities."""
