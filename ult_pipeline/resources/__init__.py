"""Typed resources for every outside system the pipeline talks to."""
