"""Configuration: `[tool.unleak]` in the nearest `pyproject.toml`, overridden by command-line flags.

Each file gets the settings of the closest `pyproject.toml` above it that has a `[tool.unleak]`
table (as ruff does), unless `--config` names one file for the whole run. Globs in `exclude` and
`per-file-ignores` are relative to the folder of the file that declares them.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unleak.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

DEFAULT_SELECT = ("UL",)


@dataclass(frozen=True)
class ResourcePair:
    """A project-specific resource: `acquire` returns it, `release` frees it, `context` wraps both."""

    acquire: str
    release: str
    context: str


@dataclass(frozen=True)
class Settings:
    select: tuple[str, ...] = DEFAULT_SELECT
    ignore: tuple[str, ...] = ()
    unsafe: bool = False
    exclude: tuple[str, ...] = ()
    per_file_ignores: tuple[tuple[str, tuple[str, ...]], ...] = ()
    resources: tuple[ResourcePair, ...] = ()
    root: Path = Path(".")  # the folder globs are relative to
    source: str = "defaults"  # where these settings came from, for error messages


@dataclass(frozen=True)
class Overrides:
    """Command-line flags; None means "not given, keep the file's value"."""

    select: tuple[str, ...] | None = None
    ignore: tuple[str, ...] | None = None
    unsafe: bool | None = None
    exclude: tuple[str, ...] | None = None

    def apply(self, settings: Settings) -> Settings:
        given = {k: v for k, v in dataclasses.asdict(self).items() if v is not None}
        return dataclasses.replace(settings, **given)


def _string_list(value: Any, key: str, path: Path) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ConfigError(str(path), f"'tool.unleak.{key}' must be a list of strings")
    return tuple(value)


def _boolean(value: Any, key: str, path: Path) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(str(path), f"'tool.unleak.{key}' must be true or false")
    return value


def _per_file_ignores(value: Any, key: str, path: Path) -> tuple[tuple[str, tuple[str, ...]], ...]:
    if not isinstance(value, dict):
        raise ConfigError(str(path), f"'tool.unleak.{key}' must be a table of glob = [rules]")
    return tuple((glob, _string_list(rules, f"{key}.{glob}", path)) for glob, rules in value.items())


_RESOURCE_KEYS = ("acquire", "release", "context")


def _resource(entry: Any, index: int, path: Path) -> ResourcePair:
    where = f"'tool.unleak.resources[{index}]'"
    if not isinstance(entry, dict):
        raise ConfigError(str(path), f"{where} must be a table with keys {', '.join(_RESOURCE_KEYS)}")
    unknown = sorted(set(entry) - set(_RESOURCE_KEYS))
    if unknown:
        raise ConfigError(str(path), f"unknown key '{unknown[0]}' in {where}")
    for key in _RESOURCE_KEYS:
        value = entry.get(key)
        if value is None:
            raise ConfigError(str(path), f"{where} is missing the key '{key}'")
        if not isinstance(value, str) or not all(part.isidentifier() for part in value.split(".")):
            raise ConfigError(str(path), f"{where}.{key} must be a (dotted) name, got {value!r}")
    return ResourcePair(**entry)


def _resources(value: Any, key: str, path: Path) -> tuple[ResourcePair, ...]:
    if not isinstance(value, list):
        raise ConfigError(str(path), f"'tool.unleak.{key}' must be an array of tables ([[tool.unleak.resources]])")
    return tuple(_resource(entry, index, path) for index, entry in enumerate(value))


# The keys of [tool.unleak]: the Settings field each fills, and how its value is checked.
_KEYS = {
    "select": ("select", _string_list),
    "ignore": ("ignore", _string_list),
    "unsafe": ("unsafe", _boolean),
    "exclude": ("exclude", _string_list),
    "per-file-ignores": ("per_file_ignores", _per_file_ignores),
    "resources": ("resources", _resources),
}


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except OSError as error:
        raise ConfigError(str(path), f"cannot read: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(str(path), f"invalid TOML: {error}") from None


def _unleak_table(path: Path) -> dict[str, Any] | None:
    table = _read_toml(path).get("tool", {}).get("unleak")
    if table is not None and not isinstance(table, dict):
        raise ConfigError(str(path), "'tool.unleak' must be a table")
    return table


def settings_from_table(table: dict[str, Any], path: Path) -> Settings:
    """Validate a `[tool.unleak]` table; an unknown key or a bad value is a ConfigError."""
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key not in _KEYS:
            raise ConfigError(str(path), f"unknown key 'tool.unleak.{key}'")
        field_name, parse = _KEYS[key]
        values[field_name] = parse(value, key, path)
    return Settings(root=path.parent.absolute(), source=str(path), **values)


def load_config_file(path: Path) -> Settings:
    """Settings of the file named by `--config` (a pyproject.toml, or any TOML with [tool.unleak])."""
    if not path.is_file():
        raise ConfigError(str(path), "no such configuration file")
    return settings_from_table(_unleak_table(path) or {}, path)


class SettingsResolver:
    """Finds the settings that apply to each folder, reading each pyproject.toml once per run.

    Folders are kept as absolute paths in text: a walk asks for thousands of them."""

    def __init__(self, overrides: Overrides, config_file: Path | None = None, *, root: Path | None = None) -> None:
        """`root`: look for a pyproject.toml no higher than this folder (a repository's own settings)."""
        self._overrides = overrides
        self._root = root.absolute() if root is not None else None
        self._root_text = self._root.as_posix() if self._root is not None else None
        self._fixed = load_config_file(config_file) if config_file else None
        self._by_folder: dict[str, Settings] = {}
        self._effective: dict[Settings, Settings] = {}  # by the file's settings: with the flags applied
        self._for_folder: dict[str, Settings] = {}  # what `for_folder` answered

    def for_path(self, path: Path) -> Settings:
        return self.for_folder(path if path.is_dir() else path.parent)

    def for_folder(self, folder: Path | str, *, holds_settings: bool | None = None) -> Settings:
        """The settings for files in `folder` (a `str` is absolute already), command-line flags
        applied. `holds_settings`: whether the folder has a `pyproject.toml`, when the caller has
        listed it (None: look)."""
        absolute = folder if isinstance(folder, str) else folder.absolute().as_posix()
        answer = self._for_folder.get(absolute)
        if answer is None:
            nearest = self._fixed or self._nearest(absolute, holds_settings)
            if nearest not in self._effective:
                self._effective[nearest] = self._overrides.apply(nearest)
            answer = self._for_folder[absolute] = self._effective[nearest]
        return answer

    def _nearest(self, folder: str, holds_settings: bool | None = None) -> Settings:
        if folder not in self._by_folder:
            self._by_folder[folder] = self._look_up(folder, holds_settings)
        return self._by_folder[folder]

    def _look_up(self, folder: str, holds_settings: bool | None) -> Settings:
        if holds_settings is not False:
            candidate = Path(folder, "pyproject.toml")
            table = _unleak_table(candidate) if candidate.is_file() else None
            if table is not None:
                return settings_from_table(table, candidate)
        parent = os.path.dirname(folder)
        if parent == folder or folder == self._root_text:
            return Settings(root=self._root or Path.cwd())
        return self._nearest(parent)
