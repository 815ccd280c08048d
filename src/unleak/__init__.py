"""unleak: finds async and resource-management bugs and rewrites them into the safe form."""

__version__ = "0.1.0"
