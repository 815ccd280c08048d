"""The fixes `check` proposes (JSON with `--edits`, SARIF): what `apply` would change, as edits.

`check` never fixes, so its findings carry the file's own positions. To propose fixes, the worker
also runs the fixes to their fixed point, exactly as `apply` does, and compares the two texts
line by line (difflib). Each changed region, trimmed to the characters that really differ,
becomes one edit on the original text and goes to exactly one finding, so that applying every
finding's edits gives `apply`'s output, byte for byte:

- a region inside a finding's range belongs to that finding; inside several (a fix nested in
  another, which `apply` finishes in a later pass), to the outermost, whose final text includes
  the inner fix; the inner finding's own edit list is then empty;
- a region outside every finding (an import added or removed at the top of the file, a comment
  moved above a rewritten statement) goes to the nearest finding whose fix declares imports, or
  else to the nearest finding.

Per-finding fix runs were the alternative; they cost a fixed-point run per finding, and their
edits overlap (two fixes adding the same import), so applying them all would not give `apply`'s
output.
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import replace

import libcst as cst

from unleak.engine import transform
from unleak.engine.findings import Edit, Finding
from unleak.engine.verify import Verifier
from unleak.knowledge.project import ProjectView
from unleak.rule import Report, Rule
from unleak.settings import Settings

# Python's line ends: \r\n, \r and \n (not the other characters str.splitlines() splits on).
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")

Position = tuple[int, int]  # (line, column), 1-based


def proposed(
    findings: list[Finding],
    reports: list[Report],
    module: cst.Module,
    rules: tuple[type[Rule], ...],
    settings: Settings,
    project: ProjectView,
    verifier: Verifier,
    widen: transform.Widen | None = None,
) -> list[Finding]:
    """`findings` (made from `reports` on `module`), each applicable one with its fix's edits."""
    if not any(finding.applicable for finding in findings):
        return findings  # nothing for `apply` to do here: no fix run needed
    fixed = transform.fix(module, rules, settings, project, verifier, widen).module.code
    declares_imports = [bool(report.imports or report.stale_imports) for report in reports]
    return attached(findings, declares_imports, changed_regions(module.code, fixed))


def changed_regions(original: str, fixed: str) -> list[Edit]:
    """Edits that turn `original` into `fixed`, in order, none overlapping another."""
    old, new = lines(original), lines(fixed)
    edits: list[Edit] = []
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        if i2 - i1 == j2 - j1:  # line for line: one edit per changed line, so neighbours stay apart
            blocks = [(i + 1, old[i], new[j]) for i, j in zip(range(i1, i2), range(j1, j2)) if old[i] != new[j]]
        else:
            blocks = [(i1 + 1, "".join(old[i1:i2]), "".join(new[j1:j2]))]
        edits.extend(_trimmed(first_line, before, after) for first_line, before, after in blocks)
    return edits


def lines(text: str) -> list[str]:
    """`text` split after each line end, as Python (and LibCST's positions) count lines."""
    return _LINE.findall(text)


def applied(text: str, edits: list[Edit]) -> str:
    """`text` with `edits` (on `text`, none overlapping another) made, from the last one back."""
    starts = [0]
    for line in lines(text):
        starts.append(starts[-1] + len(line))
    spans = sorted((starts[e.line - 1] + e.column - 1, starts[e.end_line - 1] + e.end_column - 1, e.content) for e in edits)
    for start, end, content in reversed(spans):
        text = text[:start] + content + text[end:]
    return text


def attached(findings: list[Finding], declares_imports: list[bool], edits: list[Edit]) -> list[Finding]:
    """Give each edit to one applicable finding (see the module docstring for which one)."""
    # Every edit has an owner: the first fix `apply` makes is made on the original text, so its
    # finding is among `findings`, applicable.
    owners = [index for index, finding in enumerate(findings) if finding.applicable]
    given: dict[int, list[Edit]] = {index: [] for index in owners}
    for edit in edits:
        given[_owner(edit, findings, owners, declares_imports)].append(edit)
    return [replace(finding, edits=tuple(given[index])) if index in given else finding for index, finding in enumerate(findings)]


def _owner(edit: Edit, findings: list[Finding], owners: list[int], declares_imports: list[bool]) -> int:
    covering = [index for index in owners if overlaps(edit, findings[index])]
    if covering:  # the outermost: first to start, then last to end
        return min(covering, key=lambda index: (_start(findings[index]), _negated(_end(findings[index]))))
    pool = [index for index in owners if declares_imports[index]] or owners
    return min(pool, key=lambda index: (_line_distance(edit, findings[index]), index))


def overlaps(edit: Edit, finding: Finding) -> bool:
    """Whether `edit` touches `finding`'s range (an edit outside it is an import or a moved comment)."""
    start, end = (edit.line, edit.column), (edit.end_line, edit.end_column)
    if start == end:  # an insertion: at the finding's edges counts
        return _start(finding) <= start <= _end(finding)
    return start < _end(finding) and _start(finding) < end


def _line_distance(edit: Edit, finding: Finding) -> int:
    if edit.end_line < finding.line:
        return finding.line - edit.end_line
    return max(0, edit.line - finding.end_line)


def _start(finding: Finding) -> Position:
    return (finding.line, finding.column)


def _end(finding: Finding) -> Position:
    return (finding.end_line, finding.end_column)


def _negated(position: Position) -> Position:
    return (-position[0], -position[1])


def _trimmed(first_line: int, before: str, after: str) -> Edit:
    """The edit replacing `before` (whole lines from `first_line`) by `after`, minus what both
    share at either end; a cut never falls inside a word or a \\r\\n, so edits read as whole tokens."""
    prefix = len(os.path.commonprefix([before, after]))
    while _splits(before, prefix) or _splits(after, prefix):
        prefix -= 1
    suffix = len(os.path.commonprefix([before[prefix:][::-1], after[prefix:][::-1]]))
    while _splits(before, len(before) - suffix) or _splits(after, len(after) - suffix):
        suffix -= 1
    line, column = _position_after(first_line, before[:prefix])
    end_line, end_column = _position_after(first_line, before[: len(before) - suffix])
    return Edit(line, column, end_line, end_column, after[prefix : len(after) - suffix])


def _splits(text: str, offset: int) -> bool:
    """Whether a cut at `offset` falls between a \\r and its \\n, or between two characters of a word."""
    if not 0 < offset < len(text):
        return False
    pair = text[offset - 1 : offset + 1]
    return pair == "\r\n" or all(character.isalnum() or character == "_" for character in pair)


def _position_after(first_line: int, text: str) -> Position:
    """Where `text`, starting at the first column of `first_line`, ends."""
    parts = lines(text)
    if not parts:
        return (first_line, 1)
    last = parts[-1]
    if last.endswith(("\n", "\r")):
        return (first_line + len(parts), 1)
    return (first_line + len(parts) - 1, len(last) + 1)
