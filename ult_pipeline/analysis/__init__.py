"""Verdicts and trends: regression statistics across builds."""
