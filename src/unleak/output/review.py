"""`unleak apply --interactive`: each fix shown as a hunk, asked about, and only the accepted written.

The engine makes every fix of a file at once, to a fixed point. To take some fixes and not
others, the review starts from what `check --format json --edits` gives (see `unleak.engine.edits`):
each applicable finding owns a list of edits on the ORIGINAL text, and all of them together give
exactly what `apply` writes. A fix is shown as the diff of its own edits; a file is written, once
its last question is answered, as its original text with the accepted findings' edits made.

A subset of fixes is held to more than the parse and compile every output passes: it must not
leave a name undefined that neither the original nor the full fix leaves undefined (an import
that one fix adds, or removes as stale, serves its neighbours too). When the accepted edits fail
that, the import edits outside every finding are taken from all the file's fixes, additions only;
if that fails too, the file is left unchanged, and the review says why.

A finding whose fix lies inside another's (a bare `except:` in a function whose body another fix
wraps) has no edits of its own: it comes with the enclosing fix, and is named in its header.
"""

from __future__ import annotations

import ast
import builtins
import difflib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TextIO

from unleak.engine import source
from unleak.engine.edits import applied, lines, overlaps
from unleak.engine.findings import Edit, FileResult, Finding
from unleak.engine.runner import Interrupted, holds_fixed, write_result
from unleak.engine.verify import VerificationError, Verifier, compile_error
from unleak.errors import UserError
from unleak.output.diffing import colourize
from unleak.output.report import finding_line

PROMPT = "Apply? [y]es, [n]o, [a]ll in this file, [d]one with this file, [q]uit, [?] help "
HELP = """\
y - apply this fix
n - do not apply this fix
a - apply this fix and all later fixes in the file
d - do not apply this fix or any later fix in the file
q - quit; write nothing further (files already written stay)
? - print this help
"""
_ANSWERS = frozenset("ynadq")


@dataclass(frozen=True)
class Fix:
    """One question: a finding with edits, and the nested findings its edits also fix."""

    finding: Finding
    riders: tuple[Finding, ...]

    @property
    def edits(self) -> tuple[Edit, ...]:
        return self.finding.edits or ()

    @property
    def rules(self) -> list[str]:
        return [self.finding.rule, *(rider.rule for rider in self.riders)]


@dataclass
class Terminal:
    """Where the review talks: questions and hunks out, answers in."""

    output: TextIO
    read_line: Callable[[], str]  # raises EOFError at the end of input
    colour: bool

    def say(self, text: str) -> None:
        self.output.write(text)
        self.output.flush()

    def answer(self, question: str) -> str:
        """A valid answer (y, n, a, d, q); the end of input quits."""
        while True:
            self.say(question)
            try:
                reply = self.read_line().strip().lower()
            except EOFError:
                self.say("\n")
                return "q"
            if reply[:1] in _ANSWERS:
                return reply[:1]
            self.say(HELP)


@dataclass
class Review:
    """What the review did: files written, fixes made, files it could not write."""

    written: list[str] = field(default_factory=list)
    fixes: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)  # "path: error: reason" lines
    quit: bool = False


def review(results: list[FileResult], terminal: Terminal) -> Review:
    """Ask about every fix of `results` (from a `check` with edits), file by file, in path order."""
    done = Review()
    try:
        for result in sorted(results, key=lambda result: result.display):
            if result.error is None and result.findings:
                _review_file(result, terminal, done)
            if done.quit:
                break
    except KeyboardInterrupt:
        raise Interrupted(done.written) from None
    return done


def _review_file(result: FileResult, terminal: Terminal, done: Review) -> None:
    fixes = fixes_of(result.findings)
    text = source.decode(result.original, result.display).text
    accepted = _ask(fixes, text, terminal)
    if accepted is None:
        done.quit = True
        return
    for finding in result.findings:
        if not finding.applicable:
            terminal.say(finding_line(finding) + "\n")
    if accepted:
        _write(result, text, accepted, fixes, done)


def _ask(fixes: list[Fix], text: str, terminal: Terminal) -> list[Fix] | None:
    """The fixes the user accepts, in order; None when they quit."""
    accepted: list[Fix] = []
    for number, fix in enumerate(fixes, start=1):
        terminal.say(_header(fix, number, len(fixes)) + _hunk(text, fix, terminal.colour))
        answer = terminal.answer(PROMPT)
        if answer == "q":
            return None
        if answer in "ya":
            accepted.append(fix)
        if answer == "a":
            accepted.extend(fixes[number:])
        if answer in "ad":
            break
    return accepted


def fixes_of(findings: list[Finding]) -> list[Fix]:
    """The questions for one file's findings: each applicable finding with edits, in order."""
    owners = [finding for finding in findings if finding.applicable and finding.edits]
    nested = [finding for finding in findings if finding.applicable and not finding.edits]
    return [Fix(owner, tuple(inner for inner in nested if _encloses(owner, inner))) for owner in owners]


def _encloses(outer: Finding, inner: Finding) -> bool:
    return (outer.line, outer.column) <= (inner.line, inner.column) and (inner.end_line, inner.end_column) <= (
        outer.end_line,
        outer.end_column,
    )


def _header(fix: Fix, number: int, total: int) -> str:
    finding = fix.finding
    parts = [f"\n{finding.path}:{finding.line}:{finding.column}: {finding.rule} {finding.name}: {finding.message}"]
    parts += [f"  also fixes {inner.rule} {inner.name} at line {inner.line} (nested in this fix)" for inner in fix.riders]
    parts.append(f"(fix {number}/{total} in this file)")
    return "\n".join(parts) + "\n"


def _hunk(text: str, fix: Fix, colour: bool) -> str:
    """The fix's edits as unified-diff hunks (without the file header lines)."""
    old = [line.rstrip("\r\n") + "\n" for line in lines(text)]
    new = [line.rstrip("\r\n") + "\n" for line in lines(applied(text, list(fix.edits)))]
    hunks = "".join(list(difflib.unified_diff(old, new, n=3))[2:])
    return colourize(hunks.encode("utf-8", "surrogateescape")).decode("utf-8", "surrogateescape") if colour else hunks


def _write(reviewed: FileResult, text: str, accepted: list[Fix], fixes: list[Fix], done: Review) -> None:
    try:
        result = replace(reviewed, fixed=_accepted_bytes(reviewed, text, accepted, fixes))
    except (UserError, VerificationError) as error:
        reason = error.reason if isinstance(error, UserError) else str(error)
        done.errors.append(f"{reviewed.display}: error: the accepted fixes: {reason}; file left unchanged")
        return
    try:
        write_result(result)
    except KeyboardInterrupt:
        if holds_fixed(result):
            done.written.append(result.display)
        raise
    if result.error:
        done.errors.append(f"{result.display}: error: {result.error}")
        return
    done.written.append(result.display)
    done.fixes.update(rule for fix in accepted for rule in fix.rules)


def _accepted_bytes(result: FileResult, text: str, accepted: list[Fix], fixes: list[Fix]) -> bytes:
    """The original with the accepted fixes made, verified; raise VerificationError if it fails."""
    verifier = Verifier(text, result.display)
    checks_names = compile_error(text, result.display) is None  # else `ast` cannot read it
    allowed = _undefined_names(text) | _undefined_names(applied(text, _edits_of(fixes))) if checks_names else set()
    complaint = ""
    for edits in (_edits_of(accepted), _edits_with_shared_imports(accepted, fixes)):
        candidate = applied(text, edits)
        verifier.verified_module(candidate)
        missing = _undefined_names(candidate) - allowed if checks_names else set()
        if not missing:
            return source.encode(candidate, source.decode(result.original, result.display), result.display)
        complaint = f"they leave {', '.join(sorted(missing))} undefined without the fixes declined"
    raise VerificationError(complaint)


def _edits_of(fixes: list[Fix]) -> list[Edit]:
    return [edit for fix in fixes for edit in fix.edits]


def _edits_with_shared_imports(accepted: list[Fix], fixes: list[Fix]) -> list[Edit]:
    """The accepted fixes' own edits, and every fix's edits outside its finding that only add text."""
    own = [edit for fix in accepted for edit in fix.edits if overlaps(edit, fix.finding)]
    shared = [
        edit
        for fix in fixes
        for edit in fix.edits
        if not overlaps(edit, fix.finding) and _adds_imports_only(edit)
    ]
    return own + shared


def _adds_imports_only(edit: Edit) -> bool:
    inserts = (edit.line, edit.column) == (edit.end_line, edit.end_column)
    added = [line.strip() for line in edit.content.splitlines() if line.strip()]
    return inserts and bool(added) and all(line.startswith(("import ", "from ")) for line in added)


def _undefined_names(text: str) -> set[str]:
    """Names the module reads but binds nowhere (coarsely: a binding anywhere counts)."""
    tree = ast.parse(text)
    read: set[str] = set()
    bound: set[str] = set(dir(builtins)) | {"__file__", "__name__", "__doc__", "__spec__", "__path__"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (read if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, ast.alias):
            bound.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            bound.update(node.names)
    return read - bound
