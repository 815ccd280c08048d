"""Errors that are the user's to fix: printed as one line `path: error: reason`, never a traceback."""

from __future__ import annotations


class UserError(Exception):
    """Something about the input (a file, a path, the configuration) that stops us."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: error: {reason}")
        self.path = path
        self.reason = reason


class ConfigError(UserError):
    """A bad configuration file or option: the whole run stops."""
