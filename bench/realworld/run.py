"""Measure unleak on the real-world corpus of `sites.toml`.

Each site is a location in a public repository, pinned by commit, labelled with the rule that
should fire there (or `none` for a look-alike that must stay untouched). For every repository
this script exports the tree at the pinned commit (its .py, .pyi, .toml and .cfg files) from the
local mirror that the search tool's `fetch` brought in, runs unleak on it, and reports per rule:

- found: a finding of the expected rule overlaps the site's line range (`unleak check`);
- fixed: with the rules of the repository's patterns selected, the fixes change a line of the
  range, split into safe (plain `unleak diff`) and unsafe-only (`unleak apply --unsafe`);
- broken: the site's file compiled before `unleak apply --unsafe` and does not after;
- unstable: a second run on the applied tree still changes the site's file;
- for look-alikes: flagged (a finding of the pattern's rules in range) and rewritten (a fix
  touches the range).

Nothing here is part of pytest: CI has no mirrors and no network. See README.md.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

HERE = Path(__file__).resolve().parent
DEFAULT_MIRROR = Path(os.environ.get("UNLEAK_MIRROR", "/work/.mirror"))

# The rules each pattern is measured with. A repository's fixes run with the rules of all its
# sites' patterns, and a fix counts for a site when any of them makes it (UL106's implicit-loop
# shape may be fixed by UL102, for instance). Codes this unleak does not have yet (UL303) are
# left out of the selection.
FAMILY_RULES = {
    "P2": ("UL1",),
    "P3": ("UL201", "UL202", "UL205"),
    "P6": ("UL203", "UL206"),
    "P4": ("UL301",),
    "P5": ("UL302", "UL303"),
}
EXPORTED = (".py", ".pyi", ".toml", ".cfg")
HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+\d+(?:,\d+)? @@")


@dataclass
class Site:
    repo: str
    commit: str
    path: str
    lines: tuple[int, int]
    pattern: str
    rule: str
    fix: str
    description: str
    result: dict = field(default_factory=dict)

    @property
    def lookalike(self) -> bool:
        return self.rule == "none"

    def overlaps(self, start: int, end: int) -> bool:
        return start <= self.lines[1] and end >= self.lines[0]

    def touched_by(self, changed: set[float]) -> bool:
        first, last = self.lines
        return any(first - 0.5 <= line <= last + 0.5 for line in changed)


def load_sites(path: Path) -> list[Site]:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    sites = []
    for raw in data["site"]:
        sites.append(
            Site(
                repo=raw["repo"],
                commit=raw["commit"],
                path=raw["path"],
                lines=(raw["lines"][0], raw["lines"][1]),
                pattern=raw["pattern"],
                rule=raw["rule"],
                fix=raw["fix"],
                description=raw["description"],
            )
        )
    return sites


def mirror_git_dir(root: Path, repo: str) -> Path | None:
    base = root / repo.replace("/", "+") / "repo"
    for candidate in (base, base / ".git"):
        if (candidate / "HEAD").exists() and (candidate / "objects").is_dir():
            return candidate
    return None


def has_commit(git_dir: Path, commit: str) -> bool:
    probe = ["git", "--git-dir", str(git_dir), "cat-file", "-e", f"{commit}^{{commit}}"]
    return subprocess.run(probe, capture_output=True).returncode == 0


def export_tree(git_dir: Path, commit: str, into: Path) -> int:
    """Write the commit's Python sources and config files under `into`; returns how many
    were absent from the mirror (snapshots leave out big files, so `git archive` can fail)."""
    git = ["git", "--git-dir", str(git_dir)]
    listing = subprocess.run([*git, "ls-tree", "-r", "-z", commit], capture_output=True, check=True)
    wanted = []
    for entry in listing.stdout.decode("utf-8", "surrogateescape").split("\0"):
        if not entry:
            continue
        meta, rel = entry.split("\t", 1)
        mode, kind, blob = meta.split()
        if kind == "blob" and mode != "120000" and rel.endswith(EXPORTED):
            wanted.append((blob, rel))
    batch = subprocess.run(
        [*git, "cat-file", "--batch"],
        input="".join(f"{blob}\n" for blob, _ in wanted).encode(),
        capture_output=True,
        check=True,
    ).stdout
    missing, offset = 0, 0
    for _blob, rel in wanted:
        header_end = batch.index(b"\n", offset)
        header = batch[offset:header_end].split()
        offset = header_end + 1
        if header[-1] == b"missing":
            missing += 1
            continue
        size = int(header[2])
        target = into / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(batch[offset : offset + size])
        offset += size + 1
    into.mkdir(parents=True, exist_ok=True)
    return missing


def unleak(cmd: list[str], args: list[str], tree: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*cmd, *args, "."], cwd=tree, capture_output=True, text=True)


def changed_lines(patch: str) -> dict[str, set[float]]:
    """Original line numbers each file's patch removes, and x.5 for insertions after line x."""
    changes: dict[str, set[float]] = defaultdict(set)
    path = None
    old = 0
    for line in patch.splitlines():
        if line.startswith("--- "):
            path = None
            continue
        if line.startswith("+++ "):
            path = line[4:].split("\t")[0].removeprefix("b/")
            continue
        match = HUNK.match(line)
        if match:
            old = int(match.group(1))
            # `-N,0` hunks insert after line N; others start at line N
            if match.group(2) == "0":
                old += 1
            continue
        if path is None or not line:
            continue
        if line[0] == "-":
            changes[path].add(old)
            old += 1
        elif line[0] == "+":
            changes[path].add(old - 0.5)
        elif line[0] == " ":
            old += 1
    return changes


def tree_patch(before: Path, after: Path) -> str:
    """A unified diff of every .py file that differs between two trees (what apply wrote)."""
    chunks = []
    for new in sorted(after.rglob("*.py")):
        rel = new.relative_to(after).as_posix()
        old = before / rel
        if not old.is_file():
            continue
        a, b = old.read_bytes(), new.read_bytes()
        if a == b:
            continue
        old_lines = a.decode("utf-8", "replace").splitlines(keepends=True)
        new_lines = b.decode("utf-8", "replace").splitlines(keepends=True)
        chunks.extend(difflib.unified_diff(old_lines, new_lines, f"a/{rel}", f"b/{rel}", n=0))
    return "".join(line if line.endswith("\n") else line + "\n" for line in chunks)


def compiles(path: Path) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compile(path.read_bytes(), str(path), "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        return False
    return True


def in_family(rule: str, pattern: str) -> bool:
    return rule.startswith(FAMILY_RULES[pattern])


def known_rules(cmd: list[str]) -> list[str]:
    listing = subprocess.run([*cmd, "rules"], capture_output=True, text=True, check=True)
    return re.findall(r"^(UL\d{3})\b", listing.stdout, flags=re.MULTILINE)


def selection(patterns: set[str], rules: list[str]) -> list[str]:
    """The rules of these patterns that this unleak has (one run covers all of a repo's sites)."""
    prefixes = tuple(prefix for pattern in patterns for prefix in FAMILY_RULES[pattern])
    return [rule for rule in rules if rule.startswith(prefixes)]


def measure_fixes(
    cmd: list[str], tree: Path, work: Path, sites: list[Site], rules: list[str]
) -> dict:
    selected = selection({site.pattern for site in sites}, rules)
    if not selected:
        for site in sites:
            site.result.update(fixed_safe=False, fixed_any=False, broken=False, unstable=False)
        return {
            "rules": [],
            "files_changed": 0,
            "files_broken": [],
            "files_changed_on_second_run": [],
            "apply_errors": [],
        }
    select = ["--select", ",".join(selected)]
    safe = changed_lines(unleak(cmd, ["diff", *select], tree).stdout)

    applied = work / "applied"
    shutil.copytree(tree, applied, symlinks=True)
    apply_run = unleak(cmd, ["apply", "--unsafe", *select], applied)
    unsafe = changed_lines(tree_patch(tree, applied))
    second = changed_lines(unleak(cmd, ["diff", "--unsafe", *select], applied).stdout)

    broken = sorted(rel for rel in unsafe if compiles(tree / rel) and not compiles(applied / rel))
    for site in sites:
        site.result["fixed_safe"] = site.touched_by(safe.get(site.path, set()))
        site.result["fixed_any"] = site.touched_by(unsafe.get(site.path, set()))
        site.result["broken"] = site.path in broken
        site.result["unstable"] = site.path in second
    return {
        "rules": selected,
        "files_changed": len(unsafe),
        "files_broken": broken,
        "files_changed_on_second_run": sorted(second),
        "apply_errors": [line for line in apply_run.stderr.splitlines() if ": error:" in line],
    }


def measure_repo(
    cmd: list[str], git_dir: Path, commit: str, sites: list[Site], rules: list[str]
) -> dict:
    with tempfile.TemporaryDirectory(prefix="unleak-realworld-") as tmp:
        work = Path(tmp)
        tree = work / "tree"
        absent = export_tree(git_dir, commit, tree)
        (tree / ".git").mkdir()  # a clone's root is its project root for unleak; the export has no .git
        checked = unleak(cmd, ["check", "--format", "json"], tree)
        try:
            findings = json.loads(checked.stdout or "[]")
        except json.JSONDecodeError:
            findings = []
        for site in sites:
            mine = [f for f in findings if f["path"] == site.path]
            hits = [f for f in mine if site.overlaps(f["line"], f["end_line"])]
            site.result["found"] = any(f["rule"] == site.rule for f in hits)
            site.result["flagged"] = any(in_family(f["rule"], site.pattern) for f in hits)
            site.result["rules_in_range"] = sorted({f["rule"] for f in hits})
        return {
            "files_absent_from_mirror": absent,
            "check_errors": [line for line in checked.stderr.splitlines() if ": error:" in line],
            **measure_fixes(cmd, tree, work, sites, rules),
        }


def row_key(site: Site) -> str:
    return f"look-alike {site.pattern}" if site.lookalike else site.rule


def summarize(sites: list[Site]) -> dict[str, dict[str, int]]:
    table: dict[str, dict[str, int]] = {}
    for site in sites:
        if not site.result:
            continue
        row = table.setdefault(
            row_key(site),
            {
                "sites": 0,
                "fixable": 0,
                "found": 0,
                "fixed": 0,
                "safe": 0,
                "unsafe": 0,
                "broken": 0,
                "unstable": 0,
            },
        )
        row["sites"] += 1
        row["fixable"] += site.fix != "no"
        row["broken"] += site.result["broken"]
        row["unstable"] += site.result["unstable"]
        if site.lookalike:
            row["found"] += site.result["flagged"]
            row["fixed"] += site.result["fixed_any"]
            continue
        row["found"] += site.result["found"]
        row["fixed"] += site.result["fixed_any"]
        row["safe"] += site.result["fixed_safe"]
        row["unsafe"] += site.result["fixed_any"] and not site.result["fixed_safe"]
    return dict(sorted(table.items(), key=lambda item: (item[0].startswith("look"), item[0])))


def format_table(table: dict[str, dict[str, int]]) -> str:
    head = "| rule | sites | fixable | found | fixed | safe | unsafe | broken | unstable |"
    lines = [head, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    totals = defaultdict(int)
    for name, row in table.items():
        if name.startswith("look-alike"):
            continue
        for key, value in row.items():
            totals[key] += value
        lines.append(
            f"| {name} | {row['sites']} | {row['fixable']} | {row['found']} | {row['fixed']} "
            f"| {row['safe']} "
            f"| {row['unsafe']} | {row['broken']} | {row['unstable']} |"
        )
    lines.append(
        f"| **all bugs** | {totals['sites']} | {totals['fixable']} | {totals['found']} "
        f"| {totals['fixed']} "
        f"| {totals['safe']} | {totals['unsafe']} | {totals['broken']} | {totals['unstable']} |"
    )
    lines += ["", "| look-alikes | sites | flagged | rewritten | broken | unstable |"]
    lines.append("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, row in table.items():
        if name.startswith("look-alike"):
            lines.append(
                f"| {name.removeprefix('look-alike ')} | {row['sites']} | {row['found']} "
                f"| {row['fixed']} | {row['broken']} | {row['unstable']} |"
            )
    return "\n".join(lines)


ISSUE_GROUPS = {
    "P2 (issue 14)": ("P2",),
    "P3+P6 (issue 12)": ("P3", "P6"),
    "P4+P5 (issue 13)": ("P4", "P5"),
}


def issue_summary(sites: list[Site]) -> str:
    """Found and fixed rates per issue, over the labelled bug sites (look-alikes excluded)."""
    lines = []
    for name, patterns in ISSUE_GROUPS.items():
        group = [s for s in sites if s.result and not s.lookalike and s.pattern in patterns]
        if not group:
            continue
        found = sum(s.result["found"] for s in group)
        fixed = sum(s.result["fixed_any"] for s in group)
        lines.append(
            f"{name}: {len(group)} sites, found {found} ({found / len(group):.0%}), "
            f"fixed {fixed} ({fixed / len(group):.0%})"
        )
    return "\n".join(lines)


def fetch_calls(repos: list[str]) -> str:
    return "\n".join(f"  fetch github:{repo}" for repo in repos)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=Path, default=HERE / "sites.toml")
    parser.add_argument("--mirror", type=Path, default=DEFAULT_MIRROR, help="fetch's folder")
    parser.add_argument("--repo", action="append", default=[], help="only these owner/name")
    parser.add_argument("--unleak", default=f"{sys.executable} -m unleak", help="command to run")
    parser.add_argument("--output", type=Path, default=HERE / "results.json")
    parser.add_argument("--list-fetches", action="store_true", help="print the fetch calls")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sites = load_sites(args.sites)
    if args.repo:
        sites = [site for site in sites if site.repo in args.repo]
    by_repo: dict[tuple[str, str], list[Site]] = defaultdict(list)
    for site in sites:
        by_repo[(site.repo, site.commit)].append(site)
    if args.list_fetches:
        print(fetch_calls(sorted({repo for repo, _ in by_repo})))
        return 0

    cmd = args.unleak.split()
    rules = known_rules(cmd)
    missing, repos = [], {}
    for index, ((repo, commit), members) in enumerate(sorted(by_repo.items()), 1):
        git_dir = mirror_git_dir(args.mirror, repo)
        if git_dir is None or not has_commit(git_dir, commit):
            missing.append(repo)
            continue
        print(f"[{index}/{len(by_repo)}] {repo} ({len(members)} sites)", file=sys.stderr)
        started = time.monotonic()
        measured = measure_repo(cmd, git_dir, commit, members, rules)
        repos[f"{repo}@{commit}"] = {**measured, "seconds": round(time.monotonic() - started, 1)}

    if missing:
        print(f"skipped {len(missing)} repositories not in {args.mirror}; fetch them with:")
        print(fetch_calls(sorted(set(missing))))
    table = summarize(sites)
    print(format_table(table))
    print()
    print(issue_summary(sites))
    errors = sum(len(repo["check_errors"]) for repo in repos.values())
    print(f"\nfiles unleak check could not process (see check_errors in the output): {errors}")
    args.output.write_text(
        json.dumps(
            {
                "table": table,
                "skipped": sorted(set(missing)),
                "repos": repos,
                "sites": [
                    {
                        "repo": s.repo,
                        "commit": s.commit,
                        "path": s.path,
                        "lines": list(s.lines),
                        "pattern": s.pattern,
                        "rule": s.rule,
                        "fix": s.fix,
                        **s.result,
                    }
                    for s in sites
                ],
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    print(f"\nper-site results: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
