"""Sensors that start the pipeline by themselves."""
