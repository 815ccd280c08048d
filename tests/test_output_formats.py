"""`--format sarif`, `--format github` and `check --format json --edits`, end to end.

The fixes these formats carry are checked the strong way: applied to the files (by the tests' own
code, not unleak's), they must give byte for byte what `unleak apply` writes. The SARIF log is
validated against the official SARIF 2.1.0 schema, shipped in `tests/data/` (see its README).
"""

from __future__ import annotations

import io
import json
import shutil
import tokenize
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from typer.testing import CliRunner, Result

from unleak import registry
from unleak.cli import app
from unleak.engine.cache import CACHE_FOLDER
from unleak.engine.findings import Edit, FileResult, Finding
from unleak.output import github
from tests.helpers import EXAMPLES
from tests.test_cli import BARE, SAMPLES
from tests.test_properties import Program, programs, run as apply_pipeline

SCHEMA = json.loads((Path(__file__).parent / "data" / "sarif-schema-2.1.0.json").read_text())

# UL101 removes `import asyncio` (an edit far from its finding), UL401 inserts ` Exception`.
IMPORTS_AND_HANDLER = "import asyncio\n\nasync def f():\n    asyncio.run(g())\n    try:\n        x()\n    except:\n        pass\n"
# UL202 wraps the function body in `with`; the bare `except:` inside is part of that rewrite.
NESTED = (
    "def load(path):\n"
    "    f = open(path)\n"
    "    try:\n"
    "        data = f.read()\n"
    "    except:\n"
    "        data = ''\n"
    "    f.close()\n"
    "    return data\n"
)
# UL102's fix is unsafe: `apply` makes it only with --unsafe.
UNSAFE_ONLY = "import asyncio\n\ndef notify_all(users):\n    for user in users:\n        asyncio.run(notify(user))\n"


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def unleak(*args: str, stdin: bytes | None = None) -> Result:
    return CliRunner().invoke(app, list(args), input=stdin)


def write_tree(folder: str, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        target = Path(folder, name)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def tree(folder: str) -> dict[str, bytes]:
    """The files below `folder`, without the results cache (each run keeps entries of its own kind)."""
    files = sorted(path for path in Path(folder).rglob("*") if path.is_file() and CACHE_FOLDER not in path.parts)
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in files}


def applied(folder: str, *flags: str) -> dict[str, bytes]:
    """A copy of `folder` after `unleak apply`."""
    shutil.copytree(folder, "by_apply")
    result = unleak("apply", "by_apply", *flags)
    assert result.exit_code == 0, result.output
    return {name: data for name, data in tree("by_apply").items()}


def encoding_of(raw: bytes) -> str:
    return tokenize.detect_encoding(io.BytesIO(raw).readline)[0]


def line_starts(text: str) -> list[int]:
    """Offsets of the lines as Python counts them (\\n, \\r\\n, \\r), by the io module's own rules."""
    starts = [0]
    for line in io.StringIO(text, newline="").readlines():
        starts.append(starts[-1] + len(line))
    return starts


def apply_spans(data: bytes | str, spans: list[tuple[int, int, bytes | str]]) -> Any:
    """Replace each (start, end) span, from the last: spans may not overlap."""
    ordered = sorted(spans)
    for (_, end, _), (start, _, _) in zip(ordered, ordered[1:]):
        assert end <= start, f"overlapping edits: {ordered}"
    for start, end, content in reversed(ordered):
        data = data[:start] + content + data[end:]
    return data


def apply_json_edits(folder: str, findings: list[dict[str, Any]]) -> dict[str, bytes]:
    """The files of `folder` with every edit of `check --format json --edits` applied, by line and column."""
    files = tree(folder)
    by_path: dict[str, list[dict[str, Any]]] = {}
    for finding in findings:
        by_path.setdefault(finding["path"], []).extend((finding["fix"] or {}).get("edits", []))
    for path, edits in by_path.items():
        name = Path(path).relative_to(folder).as_posix()
        raw = files[name]
        encoding = encoding_of(raw)
        text = raw.decode(encoding)
        starts = line_starts(text)
        spans = [
            (starts[e["line"] - 1] + e["column"] - 1, starts[e["end_line"] - 1] + e["end_column"] - 1, e["content"])
            for e in edits
        ]
        files[name] = apply_spans(text, spans).encode(encoding)
    return files


def apply_sarif_fixes(folder: str, log: dict[str, Any]) -> dict[str, bytes]:
    """The files of `folder` with every SARIF replacement applied to the file's bytes (byteOffset/byteLength)."""
    files = tree(folder)
    spans: dict[str, list[tuple[int, int, bytes]]] = {}
    for result in log["runs"][0]["results"]:
        for fix in result.get("fixes", []):
            for change in fix["artifactChanges"]:
                name = Path(unquote(change["artifactLocation"]["uri"])).relative_to(folder).as_posix()
                codec = encoding_of(files[name]).removesuffix("-sig")
                for replacement in change["replacements"]:
                    region = replacement["deletedRegion"]
                    start = region["byteOffset"]
                    content = replacement["insertedContent"]["text"].encode(codec)
                    spans.setdefault(name, []).append((start, start + region["byteLength"], content))
    return {name: apply_spans(data, spans.get(name, [])) for name, data in files.items()}


def assert_regions_agree(folder: str, log: dict[str, Any]) -> None:
    """Each replacement's lines and columns, character offsets and byte offsets name the same text."""
    for result in log["runs"][0]["results"]:
        for fix in result.get("fixes", []):
            for change in fix["artifactChanges"]:
                raw = Path(unquote(change["artifactLocation"]["uri"])).read_bytes()
                encoding = encoding_of(raw)
                text = raw.decode(encoding)
                starts = line_starts(text)
                for replacement in change["replacements"]:
                    region = replacement["deletedRegion"]
                    start = starts[region["startLine"] - 1] + region["startColumn"] - 1
                    end = starts[region["endLine"] - 1] + region["endColumn"] - 1
                    assert (start, end - start) == (region["charOffset"], region["charLength"])
                    deleted = raw[region["byteOffset"] : region["byteOffset"] + region["byteLength"]]
                    assert deleted == text[start:end].encode(encoding.removesuffix("-sig"))


def sarif_of(*args: str) -> dict[str, Any]:
    result = unleak("check", "--format", "sarif", *args)
    assert result.exit_code in (0, 1), result.output
    log = json.loads(result.stdout)
    jsonschema.Draft4Validator(SCHEMA).validate(log)
    return log


def json_of(*args: str) -> list[dict[str, Any]]:
    result = unleak("check", "--format", "json", "--edits", *args)
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.stdout)


# --- The fixes reproduce `apply` exactly ---------------------------------------------------------

CASES = {
    **SAMPLES,  # CRLF, latin-1, BOM, no final newline, a fix on the first line, a folder with a space
    "imports.py": IMPORTS_AND_HANDLER.encode(),
    "nested.py": NESTED.encode(),
    "unsafe_only.py": UNSAFE_ONLY.encode(),
    "clean.py": b"def f():\n    return 1\n",
}


@pytest.mark.parametrize("flags", [(), ("--unsafe",)], ids=["default", "unsafe"])
def test_sarif_and_json_fixes_reproduce_apply_byte_for_byte(flags: tuple[str, ...]) -> None:
    write_tree("src", CASES)
    expected = applied("src", *flags)
    assert {name for name in CASES if expected[name] != CASES[name]} == set(CASES) - {"clean.py"} - (
        set() if flags else {"unsafe_only.py"}
    )
    log = sarif_of("src", *flags)
    assert_regions_agree("src", log)
    assert apply_sarif_fixes("src", log) == expected
    assert apply_json_edits("src", json_of("src", *flags)) == expected
    assert tree("src") == CASES, "check never writes"


def test_fixes_reproduce_apply_on_every_example_app() -> None:
    shutil.copytree(EXAMPLES, "examples", ignore=shutil.ignore_patterns("__pycache__"))
    expected = applied("examples", "--unsafe")
    assert expected != tree("examples")
    log = sarif_of("examples", "--unsafe")
    assert len({result["ruleId"] for result in log["runs"][0]["results"] if "fixes" in result}) >= 8
    assert_regions_agree("examples", log)
    assert apply_sarif_fixes("examples", log) == expected


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(programs())
def test_generated_programs_edits_reproduce_apply(program: Program) -> None:
    Path("generated.py").write_bytes(program.raw)
    fixed = apply_pipeline(program.raw)
    expected = fixed.fixed if fixed.fixed is not None else program.raw
    assert apply_json_edits(".", json_of("generated.py", "--jobs", "1"))["generated.py"] == expected


# --- What each finding's fix holds ---------------------------------------------------------------


def test_json_edits_are_exact_and_go_to_the_finding_they_belong_to() -> None:
    Path("app.py").write_text(IMPORTS_AND_HANDLER)
    run_until, bare = json_of("app.py")
    assert run_until["fix"] == {
        "applicability": "safe",
        "edits": [
            # the import UL101 leaves unused, with the blank line under it: far from the finding
            {"line": 1, "column": 1, "end_line": 3, "end_column": 1, "content": ""},
            {"line": 4, "column": 5, "end_line": 4, "end_column": 20, "content": "await g("},
        ],
    }
    assert bare["fix"] == {
        "applicability": "safe",
        "edits": [{"line": 7, "column": 11, "end_line": 7, "end_column": 11, "content": " Exception"}],
    }


def test_a_fix_nested_in_another_is_part_of_the_outer_fix() -> None:
    Path("app.py").write_text(NESTED)
    by_rule = {finding["rule"]: finding for finding in json_of("app.py")}
    assert by_rule["UL401"]["fix"] == {"applicability": "safe", "edits": []}
    [outer] = by_rule["UL202"]["fix"]["edits"]
    assert "except Exception:" in outer["content"] and "with open(path) as f:" in outer["content"]
    sarif_results = {result["ruleId"]: result for result in sarif_of("app.py")["runs"][0]["results"]}
    assert "fixes" not in sarif_results["UL401"] and "fixes" in sarif_results["UL202"]


def test_a_fix_apply_would_not_make_has_no_edits() -> None:
    Path("app.py").write_text(UNSAFE_ONLY)
    [finding] = json_of("app.py")
    assert (finding["fixable"], finding["safety"], finding["fix"]) == (True, "unsafe", None)
    [result] = sarif_of("app.py")["runs"][0]["results"]
    assert "fixes" not in result
    [with_unsafe] = json_of("app.py", "--unsafe")
    assert with_unsafe["fix"]["applicability"] == "unsafe" and with_unsafe["fix"]["edits"]


def test_detect_only_findings_have_no_fix() -> None:
    detect_only = registry.rule_by_code("UL502")
    Path("app.py").write_text(detect_only.INVALID[0].code)
    findings = json_of("app.py")
    assert findings and all(finding["fix"] is None for finding in findings)


def test_json_without_edits_is_unchanged() -> None:
    Path("app.py").write_text(BARE)
    [finding] = json.loads(unleak("check", "--format", "json", "app.py").stdout)
    assert "fix" not in finding and "edits" not in finding


@pytest.mark.parametrize(
    "args", [("check", "--edits"), ("check", "--format", "github", "--edits"), ("diff", "--format", "json", "--edits")]
)
def test_edits_only_with_check_and_json(args: tuple[str, ...]) -> None:
    Path("app.py").write_text(BARE)
    result = unleak(*args, "app.py")
    assert result.exit_code == 2
    assert "--edits: error: only with `check --format json`" in result.stderr
    assert Path("app.py").read_text() == BARE


def test_edits_from_stdin() -> None:
    result = unleak("check", "--format", "json", "--edits", "-", "--stdin-filename", "app.py", stdin=BARE.encode())
    [finding] = json.loads(result.stdout)
    assert finding["path"] == "app.py" and finding["fix"]["edits"][0]["content"] == " Exception"


# --- SARIF: the log around the results ------------------------------------------------------------


def test_sarif_describes_every_rule_with_its_help() -> None:
    Path("app.py").write_text(BARE)
    run = sarif_of("app.py")["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    codes = [rule["id"] for rule in rules]
    assert codes == sorted(codes) and "UL202" in codes
    [result] = run["results"]
    assert rules[result["ruleIndex"]]["id"] == result["ruleId"] == "UL401"
    bare = rules[result["ruleIndex"]]
    assert bare["name"] == "bare-except" and "## What it does" in bare["help"]["markdown"]
    assert run["columnKind"] == "unicodeCodePoints"
    assert result["locations"][0]["physicalLocation"] == {
        "artifactLocation": {"uri": "app.py", "uriBaseId": "%SRCROOT%"},
        "region": {"startLine": 3, "startColumn": 1, "endLine": 4, "endColumn": 9},
    }
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"] == Path.cwd().as_uri() + "/"


def test_sarif_reports_files_it_could_not_process(in_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    outside = in_tmp / "bad name.py"  # outside the current folder: an absolute file URI
    outside.write_bytes(b"try:\n    x()\nexcept:\n    pass\nname = '\xff'\n")
    (in_tmp / "project").mkdir()
    monkeypatch.chdir(in_tmp / "project")
    result = unleak("check", "--format", "sarif", str(outside))
    assert result.exit_code == 2
    log = json.loads(result.stdout)
    jsonschema.Draft4Validator(SCHEMA).validate(log)
    [invocation] = log["runs"][0]["invocations"]
    assert invocation["executionSuccessful"] is False
    [notification] = invocation["toolExecutionNotifications"]
    assert "cannot decode" in notification["message"]["text"]
    location = notification["locations"][0]["physicalLocation"]["artifactLocation"]
    assert location == {"uri": outside.as_uri()}
    assert "cannot decode" in result.stderr


def test_apply_with_sarif_leaves_one_log_on_stderr() -> None:
    Path("app.py").write_text(BARE + UNSAFE_ONLY)
    result = unleak("apply", "--format", "sarif", "app.py")
    assert result.exit_code == 0
    log = json.loads(result.stderr)
    jsonschema.Draft4Validator(SCHEMA).validate(log)
    [left] = log["runs"][0]["results"]
    assert left["ruleId"] == "UL102" and "fixes" not in left


# --- GitHub workflow commands ---------------------------------------------------------------------


def test_github_annotations() -> None:
    Path("app.py").write_text(BARE + UNSAFE_ONLY)
    result = unleak("check", "--format", "github", "app.py")
    assert result.exit_code == 1
    [bare] = [line for line in result.stdout.splitlines() if "title=UL401" in line]
    [per_item] = [line for line in result.stdout.splitlines() if "title=UL102" in line]
    assert bare.startswith("::warning file=app.py,line=3,col=1,endLine=4,endColumn=9,title=UL401::bare-except: Bare `except:`")
    assert bare.endswith("(fixed by `unleak apply`)")
    assert per_item.startswith("::warning file=app.py,line=7,col=1,endLine=9,endColumn=34,title=UL102::asyncio-run-in-loop: ")
    assert per_item.endswith("(unsafe fix available with --unsafe)")


def test_github_escapes_what_the_runner_would_misread() -> None:
    finding = Finding(
        path="odd,name:1.py", line=1, column=2, end_line=3, end_column=4, rule="UL401", name="bare-except",
        message="100% sure\r\nsecond line", fixable=False, safety="detect", applicable=False,
    )
    failed = FileResult(display="a,b.py", path=None, original=b"", error="cannot read: 50%")
    assert github.commands([FileResult(display="x", path=None, original=b"", findings=[finding]), failed]) == (
        "::warning file=odd%2Cname%3A1.py,line=1,col=2,endLine=3,endColumn=4,title=UL401::bare-except: 100%25 sure%0D%0Asecond line\n"
        "::error file=a%2Cb.py,title=unleak::cannot read: 50%25\n"
    )


def test_github_format_on_diff_and_apply_goes_to_stderr() -> None:
    Path("app.py").write_text(UNSAFE_ONLY)
    result = unleak("diff", "--format", "github", "app.py")
    assert result.stdout == "" and result.stderr.startswith("::warning file=app.py,line=3,col=1,endLine=5,endColumn=34,title=UL102::")


# --- The edit regions themselves ------------------------------------------------------------------


def test_edits_never_cut_a_crlf_or_a_word() -> None:
    from unleak.engine.edits import changed_regions

    assert changed_regions("a = f(x)\r\nb\r\n", "a = f(x)\r\nb = 1\r\n") == [Edit(2, 2, 2, 2, " = 1")]
    assert changed_regions("x\r\n", "x\n") == [Edit(1, 2, 2, 1, "\n")]
    assert changed_regions("logger.error(e)\n", "logger.exception(e)\n") == [Edit(1, 8, 1, 13, "exception")]
    assert changed_regions("a\nb", "a\nb\nc\n") == [Edit(2, 2, 2, 2, "\nc\n")]  # a last line without newline


def test_a_region_outside_every_finding_goes_to_the_nearest_fix_that_declares_imports() -> None:
    from unleak.engine.edits import attached

    def at(line: int, applicable: bool = True) -> Finding:
        return Finding("a.py", line, 5, line, 9, "UL101", "n", "m", True, "safe", applicable)

    findings = [at(3), at(20), at(30), at(40, applicable=False)]
    top, inside, near_the_end = Edit(1, 1, 2, 1, ""), Edit(20, 6, 20, 6, "x"), Edit(41, 1, 41, 1, "y")
    owned = attached(findings, [False, True, False, False], [top, inside, near_the_end])
    assert [finding.edits for finding in owned] == [(), (top, inside, near_the_end), (), None]
    owned = attached(findings, [False, False, False, False], [top, near_the_end])
    assert [finding.edits for finding in owned] == [(top,), (), (near_the_end,), None]
