"""Workflows built on the engine: `unleak bulk` (many repositories, locally or on Dask)."""
