"""The rules: found by importing every module of `unleak.transforms`, and chosen by selectors.

A selector is a rule code (`UL401`), a code prefix (`UL4`, `UL`), a rule name (`bare-except`)
or `ALL`. `select` minus `ignore` minus the matching `per-file-ignores` gives a file's rules.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from functools import cache
from pathlib import Path

from unleak import globs, transforms
from unleak.errors import ConfigError
from unleak.rule import Rule
from unleak.settings import Settings


@cache
def all_rules() -> tuple[type[Rule], ...]:
    """Every rule class defined in a module of `unleak.transforms`, ordered by code."""
    found: list[type[Rule]] = []
    for module_info in pkgutil.iter_modules(transforms.__path__, f"{transforms.__name__}."):
        module = importlib.import_module(module_info.name)
        found.extend(
            value
            for value in vars(module).values()
            if inspect.isclass(value) and issubclass(value, Rule) and value.__module__ == module.__name__
        )
    return tuple(sorted(found, key=lambda rule: rule.code))


def rule_by_code(code: str) -> type[Rule]:
    return next(rule for rule in all_rules() if rule.code == code)


def find_rule(code_or_name: str) -> type[Rule] | None:
    wanted = code_or_name.strip()
    return next((rule for rule in all_rules() if wanted.upper() == rule.code or wanted == rule.name), None)


def _matches(selector: str, rule: type[Rule]) -> bool:
    selector = selector.strip()
    return selector == "ALL" or selector == rule.name or (selector.isalnum() and rule.code.startswith(selector.upper()))


def matching_rules(selectors: tuple[str, ...], source: str, key: str) -> set[type[Rule]]:
    """The rules the selectors name; a selector that names none is a configuration error."""
    chosen: set[type[Rule]] = set()
    for selector in selectors:
        matched = {rule for rule in all_rules() if _matches(selector, rule)}
        if not matched:
            raise ConfigError(source, f"unknown rule selector {selector!r} in '{key}'")
        chosen |= matched
    return chosen


def rules_for(settings: Settings, path: Path) -> tuple[type[Rule], ...]:
    """The rules that run on `path` under `settings`, ordered by code."""
    chosen = set(_selected(settings))
    for glob, selectors in settings.per_file_ignores:
        if globs.matches((glob,), path, settings.root):
            chosen -= matching_rules(selectors, settings.source, f"per-file-ignores.{glob}")
    return tuple(sorted(chosen, key=lambda rule: rule.code))


@cache
def _selected(settings: Settings) -> frozenset[type[Rule]]:
    """`select` minus `ignore`: the same for every file that shares these settings."""
    chosen = matching_rules(settings.select, settings.source, "select")
    return frozenset(chosen - matching_rules(settings.ignore, settings.source, "ignore"))
