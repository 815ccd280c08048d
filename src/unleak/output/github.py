"""`--format github`: GitHub Actions workflow commands, so findings show inline on pull requests.

One `::warning file=…,line=…,col=…,endLine=…,endColumn=…,title=UL202::message` per finding and one
`::error file=…,title=unleak::reason` per file that could not be processed. Values are escaped as
the Actions runner expects: `%`, `\\r` and `\\n` everywhere, and also `:` and `,` in properties.
"""

from __future__ import annotations

from collections.abc import Iterable

from unleak.engine.findings import FileResult, Finding
from unleak.output.report import findings_of, fix_note

_DATA_ESCAPES = {"%": "%25", "\r": "%0D", "\n": "%0A"}
_PROPERTY_ESCAPES = {**_DATA_ESCAPES, ":": "%3A", ",": "%2C"}


def commands(results: Iterable[FileResult]) -> str:
    results = list(results)
    lines = [_warning(finding) for finding in findings_of(results)]
    lines += [_command("error", {"file": result.display, "title": "unleak"}, result.error) for result in results if result.error]
    return "".join(line + "\n" for line in lines)


def _warning(finding: Finding) -> str:
    where = {
        "file": finding.path,
        "line": str(finding.line),
        "col": str(finding.column),
        "endLine": str(finding.end_line),
        "endColumn": str(finding.end_column),
        "title": finding.rule,
    }
    note = fix_note(finding)
    return _command("warning", where, f"{finding.name}: {finding.message}" + (f" ({note})" if note else ""))


def _command(name: str, properties: dict[str, str], message: str) -> str:
    listed = ",".join(f"{key}={_escaped(value, _PROPERTY_ESCAPES)}" for key, value in properties.items())
    return f"::{name} {listed}::{_escaped(message, _DATA_ESCAPES)}"


def _escaped(text: str, escapes: dict[str, str]) -> str:
    return "".join(escapes.get(character, character) for character in text)
