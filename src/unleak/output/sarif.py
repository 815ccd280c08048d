"""`--format sarif`: a SARIF 2.1.0 log, with the fixes in it.

Every rule is described in `tool.driver.rules` (its summary, and its documentation as help).
Each finding is a result; one whose fix `apply` would make carries it in
`fixes[].artifactChanges[].replacements`: the region of the original file to delete, given both
as lines and columns (columns count characters: `columnKind` is `unicodeCodePoints`) and as
`byteOffset`/`byteLength` in the file's own bytes, and the text to insert there. Applying every
replacement gives exactly what `unleak apply` writes. Files that could not be processed are
`toolExecutionNotifications` of the invocation.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

import unleak
from unleak import registry
from unleak.engine import source
from unleak.engine.edits import lines
from unleak.engine.findings import Edit, FileResult, Finding
from unleak.output.explain import documentation
from unleak.rule import Rule

SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
_ROOT = "%SRCROOT%"  # relative paths are relative to the folder unleak ran in

Json = dict[str, Any]


def log(results: list[FileResult]) -> Json:
    rules = registry.all_rules()
    index = {rule.code: position for position, rule in enumerate(rules)}
    run: Json = {
        "tool": {"driver": _driver(rules)},
        "originalUriBaseIds": {_ROOT: {"uri": Path.cwd().as_uri() + "/"}},
        "columnKind": "unicodeCodePoints",
        "invocations": [_invocation(results)],
        "results": [entry for result in results for entry in _results(result, index)],
    }
    return {"$schema": SCHEMA, "version": "2.1.0", "runs": [run]}


def _driver(rules: tuple[type[Rule], ...]) -> Json:
    return {
        "name": "unleak",
        "version": unleak.__version__,
        "semanticVersion": unleak.__version__,
        "rules": [_rule(rule) for rule in rules],
    }


def _rule(rule: type[Rule]) -> Json:
    help_text = f"{rule.summary}\n\n{documentation(rule)}"
    return {
        "id": rule.code,
        "name": rule.name,
        "shortDescription": {"text": rule.summary},
        "help": {"text": help_text, "markdown": help_text},
        "defaultConfiguration": {"level": "warning"},
        "properties": {"fixSafety": rule.safety.value},
    }


def _invocation(results: list[FileResult]) -> Json:
    failed = [result for result in results if result.error]
    notifications = [
        {"level": "error", "message": {"text": result.error}, "locations": [{"physicalLocation": {"artifactLocation": _artifact(result.display)}}]}
        for result in failed
    ]
    return {"executionSuccessful": not failed, "toolExecutionNotifications": notifications}


def _results(result: FileResult, rule_index: dict[str, int]) -> list[Json]:
    offsets = _Offsets.of(result)
    return [_result(finding, rule_index[finding.rule], offsets) for finding in result.findings]


def _result(finding: Finding, rule_index: int, offsets: _Offsets) -> Json:
    region = {"startLine": finding.line, "startColumn": finding.column, "endLine": finding.end_line, "endColumn": finding.end_column}
    result: Json = {
        "ruleId": finding.rule,
        "ruleIndex": rule_index,
        "level": "warning",
        "message": {"text": finding.message},
        "locations": [{"physicalLocation": {"artifactLocation": _artifact(finding.path), "region": region}}],
        "properties": {"fixSafety": finding.safety},
    }
    if finding.edits:  # None: no fix to propose; empty: the change is in an enclosing finding's fix
        change = {"artifactLocation": _artifact(finding.path), "replacements": [offsets.replacement(edit) for edit in finding.edits]}
        result["fixes"] = [{"description": {"text": f"{finding.rule} {finding.name}: what `unleak apply` changes"}, "artifactChanges": [change]}]
    return result


def _artifact(display: str) -> Json:
    path = PurePosixPath(display)
    if path.is_absolute():
        return {"uri": Path(display).as_uri()}
    return {"uri": quote(display), "uriBaseId": _ROOT}


class _Offsets:
    """Character and byte offsets of (line, column) positions in one file's original text."""

    def __init__(self, text: str, encoding: str) -> None:
        self._text = text
        self._encoding = encoding
        self._line_starts = [0]
        for line in lines(text):
            self._line_starts.append(self._line_starts[-1] + len(line))

    @classmethod
    def of(cls, result: FileResult) -> _Offsets:
        if not any(finding.edits for finding in result.findings):
            return cls("", "utf-8")  # no replacement to place: don't decode
        decoded = source.decode(result.original, result.display)
        return cls(decoded.text, decoded.encoding)

    def replacement(self, edit: Edit) -> Json:
        start = self._character(edit.line, edit.column)
        end = self._character(edit.end_line, edit.end_column)
        region = {
            "startLine": edit.line,
            "startColumn": edit.column,
            "endLine": edit.end_line,
            "endColumn": edit.end_column,
            "charOffset": start,
            "charLength": end - start,
            "byteOffset": len(self._text[:start].encode(self._encoding)),  # a BOM included
            "byteLength": len(self._text[start:end].encode(self._encoding.removesuffix("-sig"))),
        }
        return {"deletedRegion": region, "insertedContent": {"text": edit.content}}

    def _character(self, line: int, column: int) -> int:
        return self._line_starts[line - 1] + column - 1

