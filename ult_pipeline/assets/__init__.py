"""The pipeline's assets, one module per step."""
