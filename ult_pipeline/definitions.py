"""Assembles the code location; every piece is defined in its own module."""

import dagster as dg

defs = dg.Definitions()
