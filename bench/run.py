"""Benchmark unleak against ruff and LibCST's own codemod runner on Django and three application repositories.

Run it with the Python of the virtualenv where unleak and ruff are installed (`pip install -e . ruff`):

    python bench/run.py [--jobs 2] [--repeat 1] [--only NAME]... [--skip-libcst]
                        [--django-version 5.1.4] [--cache-dir bench/.cache] [--mirror-dir /work/.mirror]

The code bases, extracted into the cache folder on their first run and reused afterwards:

  * `django`: the Django sdist, downloaded with pip;
  * `dispatch`, `chia`, `privacyidea`: public application repositories dense with `except`
    handlers, ORM and asyncio code, pinned by commit (DENSE_REPOS). Their `.py` files are taken
    with `git archive` from a bare mirror, which the search tool's `fetch` brings onto this machine
    (CI has no network: a missing mirror is reported, with the `fetch` call to make, and skipped).

On each one, on the same files and the same number of processes, it times:

  * ruff, cold (`--no-cache`), with the rules that overlap unleak's (RUFF_RULES);
  * `python -m libcst.tool codemod -j N` running the no-op codemod of bench_noop.py, and a bare
    `libcst.parse_module` of every file in one process (both skipped with --skip-libcst);
  * `unleak check`; `unleak apply` on a fresh copy of the tree each time, since it writes;
  * `unleak check` re-run on a warm cache (when the installed unleak has a cache, i.e. `--no-cache`).

Each command runs --repeat times and the fastest run is kept. The script prints the tables and the
ratios against the targets (TARGETS), writes the numbers to bench/results.json and exits 0 whether or
not the targets are met; it exits 1 only if something crashed.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_FILE = BENCH_DIR / "results.json"
DEFAULT_MIRROR_DIR = Path("/work/.mirror")
INDEX_SHARE_TARGET = 0.10  # the project index: under 10% of a check run
PEAK_RSS_TARGET_MIB = 250.0  # the largest unleak process, on every code base
OUTPUT_TAIL_LINES = 5
RSS_BYTES_PER_UNIT = 1 if sys.platform == "darwin" else 1024  # ru_maxrss is in KiB on Linux
RUFF_RULES = "E722,TRY400,SIM115,ASYNC,BLE001"  # ruff's rules that overlap unleak's
UNLEAK_CACHE_FOLDER = ".unleak_cache"
DJANGO = "django"

RUFF = "ruff"
LIBCST_RUNNER = "libcst_codemod"
LIBCST_PARSE = "libcst_parse"
CHECK = "unleak_check"
APPLY = "unleak_apply"
CACHED = "unleak_cached"
UNLEAK_ROWS = (CHECK, APPLY, CACHED)
SHORT_LABELS = {RUFF: "ruff", LIBCST_RUNNER: "LibCST", LIBCST_PARSE: "parse", CHECK: "check", APPLY: "apply", CACHED: "cached"}

# Runs the command in argv[1:] and prints, as JSON, its wall-clock time, the CPU time of all its
# processes and the peak RSS of the largest one: this wrapper is a fresh process, so
# RUSAGE_CHILDREN covers that command alone. The command's stdout goes to stderr, so the
# wrapper's stdout carries only the JSON.
MEASURE_SCRIPT = """
import json, resource, subprocess, sys, time
start = time.perf_counter()
returncode = subprocess.run(sys.argv[1:], stdout=sys.stderr).returncode
seconds = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
cpu = usage.ru_utime + usage.ru_stime
print(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "returncode": returncode, "peak_rss": usage.ru_maxrss}))
"""

# Parses every .py file below argv[1] with libcst.parse_module, in this one process.
PARSE_SCRIPT = """
import pathlib, sys, libcst
files = [path for path in pathlib.Path(sys.argv[1]).rglob("*.py") if path.is_file()]
failed = 0
for path in files:
    try:
        libcst.parse_module(path.read_bytes())
    except libcst.ParserSyntaxError:
        failed += 1
print(f"Parsed {len(files)} files, {failed} failed.")
sys.exit(1 if failed else 0)
"""

# Written at the top of an extracted tree so unleak treats it as a project of its own: the
# repository's settings and .gitignore (which ignores the cache folder) must not apply to it.
STANDALONE_PYPROJECT = "# Written by bench/run.py: default unleak settings for this tree.\n[tool.unleak]\n"


@dataclass(frozen=True)
class PinnedRepo:
    """A public repository at a fixed commit, read from the bare mirror that `fetch` makes."""

    name: str
    github: str  # owner/name
    commit: str
    about: str

    def mirror(self, mirror_dir: Path) -> Path:
        return mirror_dir / self.github.replace("/", "+") / "repo"


# Chosen for size (400+ .py files) and density of what unleak looks at: log calls in `except`
# handlers, sessions and ORM queries, asyncio. `about` gives the findings of `unleak check` at the
# time they were chosen (2026-11-30).
DENSE_REPOS = (
    PinnedRepo(
        "dispatch", "Netflix/dispatch", "dd2837e82a0bf5565b1b4b4b91ea30b7262d4061",
        "FastAPI + SQLAlchemy incident manager; 717 .py files, 50 findings",
    ),
    PinnedRepo(
        "chia", "Chia-Network/chia-blockchain", "d61ed07dee7e9f846b475184db29e885f4699d2a",
        "asyncio node and wallet on aiosqlite; 975 .py files, 150 findings",
    ),
    PinnedRepo(
        "privacyidea", "privacyidea/privacyidea", "55410007d118b505d9ff300b6114c2701e9bdb3c",
        "Flask + SQLAlchemy authentication server; 629 .py files, 106 findings",
    ),
)
CODEBASE_NAMES = (DJANGO, *(repo.name for repo in DENSE_REPOS))


class BenchError(Exception):
    """Something the benchmark needs failed; the message says what."""


@dataclass(frozen=True)
class Codebase:
    name: str
    source: str  # where the tree comes from: the sdist, or repository@commit
    tree: Path
    python_files: int


@dataclass(frozen=True)
class Tool:
    """A command to time. Exit codes in `ok` mean success; in `partial`, success although some
    files failed (recorded, with a warning); any other exit code means it crashed. `before_each`
    runs before every timed run, off the clock."""

    key: str
    label: str
    argv: tuple[str, ...]
    ok: frozenset[int]
    partial: frozenset[int] = frozenset()
    processed_pattern: str | None = None  # group 1: how many files the command says it did
    findings_pattern: str | None = None  # group 1: how many findings it reports
    env: dict[str, str] = field(default_factory=dict)
    before_each: Callable[[], None] | None = None


@dataclass(frozen=True)
class Measurement:
    command: list[str]
    seconds: float
    cpu_seconds: float  # user + system, over every process of the command
    peak_rss_mib: float
    returncode: int
    files_processed: int | None
    findings: int | None
    output_tail: list[str]


@dataclass(frozen=True)
class Target:
    """`row` takes at most `limit` times `reference` (or, with `speedup`, `reference` takes at least
    `limit` times `row`), in wall-clock seconds."""

    row: str
    reference: str
    limit: float
    speedup: bool = False

    def describe(self) -> str:
        if self.speedup:
            return f"{SHORT_LABELS[self.row]} >= {self.limit:g}x faster than {SHORT_LABELS[self.reference]}"
        return f"{SHORT_LABELS[self.row]} <= {self.limit:g}x {SHORT_LABELS[self.reference]}"

    def ratio(self, results: dict[str, Measurement], time_of: Callable[[Measurement], float]) -> float | None:
        if self.row not in results or self.reference not in results:
            return None
        row, reference = time_of(results[self.row]), time_of(results[self.reference])
        return reference / row if self.speedup else row / reference

    def met(self, ratio: float) -> bool:
        return ratio >= self.limit if self.speedup else ratio <= self.limit


TARGETS: dict[str, tuple[Target, ...]] = {
    DJANGO: (Target(CHECK, RUFF, 5), Target(CHECK, LIBCST_RUNNER, 50, speedup=True), Target(CACHED, RUFF, 2)),
    "dense": (Target(CHECK, LIBCST_RUNNER, 0.2), Target(CHECK, RUFF, 25), Target(APPLY, CHECK, 2), Target(CACHED, RUFF, 2)),
}


@dataclass(frozen=True)
class Verdict:
    target: str
    ratio: float | None  # wall-clock: what the target is about
    cpu_ratio: float | None  # the same with CPU seconds, steadier on a busy machine
    verdict: str  # PASS, FAIL, or N/A when a row was not timed


@dataclass(frozen=True)
class MemoryVerdict:
    largest_mib: float | None  # the peak RSS of the largest unleak process, over every code base
    verdict: str


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=2, help="processes for every tool (default: 2)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per command; the fastest is kept (default: 1)")
    parser.add_argument("--only", action="append", choices=CODEBASE_NAMES, help="measure this code base only (repeatable)")
    parser.add_argument("--cache-dir", type=Path, default=BENCH_DIR / ".cache", help="where the code bases are extracted")
    parser.add_argument("--mirror-dir", type=Path, default=DEFAULT_MIRROR_DIR, help="where `fetch` puts the mirrors")
    parser.add_argument("--skip-libcst", action="store_true", help="do not time the LibCST runner and parse loop")
    parser.add_argument("--django-version", default="5.1.4", help="the Django sdist to benchmark on (default: 5.1.4)")
    args = parser.parse_args(argv)
    if args.jobs < 1 or args.repeat < 1:
        parser.error("--jobs and --repeat must be at least 1")
    return args


# --- the code bases ---------------------------------------------------------------------------


def find_sdist(cache_dir: Path, version: str) -> Path | None:
    wanted = f"django-{version}.tar.gz"
    return next((path for path in cache_dir.glob("*.tar.gz") if path.name.lower() == wanted), None)


def download_sdist(cache_dir: Path, version: str) -> Path:
    progress(f"downloading the Django {version} sdist with pip into {cache_dir}")
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:"]
    command += [f"Django=={version}", "--dest", str(cache_dir)]
    completed = subprocess.run(command, capture_output=True, text=True)
    sdist = find_sdist(cache_dir, version)
    if completed.returncode != 0 or sdist is None:
        output = (completed.stdout + completed.stderr).splitlines()
        raise BenchError(f"pip download failed (exit {completed.returncode}):\n" + indent(output[-OUTPUT_TAIL_LINES:]))
    return sdist


def extract_all(archive: tarfile.TarFile, destination: Path) -> None:
    if hasattr(tarfile, "data_filter"):  # Python 3.12 and 3.11.4+: refuse links and paths out of the tree
        archive.extractall(destination, filter="data")
    else:
        archive.extractall(destination)


def extract(open_archive: Callable[[], tarfile.TarFile], destination: Path) -> None:
    """Extract through a temporary sibling folder, so an interrupted run leaves no half tree."""
    progress(f"extracting into {destination}")
    partial = destination.with_name(destination.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    with open_archive() as archive:
        extract_all(archive, partial)
    (partial / ".git").mkdir()  # a repository root: no .gitignore from above applies below it
    (partial / "pyproject.toml").write_text(STANDALONE_PYPROJECT, encoding="utf-8")
    partial.rename(destination)


def prepare_django(cache_dir: Path, version: str) -> Codebase:
    """The extracted Django sources, downloading and extracting them on the first run only."""
    tree = cache_dir / f"django-{version}"
    if not tree.is_dir():
        sdist = find_sdist(cache_dir, version) or download_sdist(cache_dir, version)
        extract(lambda: tarfile.open(sdist), tree)
    return Codebase(DJANGO, f"Django {version} sdist", tree, count_python_files(tree))


def git_archive_of_python_files(mirror: Path, commit: str) -> tarfile.TarFile:
    """The `.py` files of `commit`. Only those: a mirror may lack its largest blobs (archives,
    images), and the repository's own configuration files must not steer the tools."""
    command = ["git", f"--git-dir={mirror}", "archive", commit, "--", ":(glob)**/*.py"]
    completed = subprocess.run(command, capture_output=True)
    if completed.returncode != 0:
        output = completed.stderr.decode(errors="replace").splitlines()
        raise BenchError(f"git archive failed (exit {completed.returncode}):\n" + indent(output[-OUTPUT_TAIL_LINES:]))
    return tarfile.open(fileobj=io.BytesIO(completed.stdout))


def has_commit(mirror: Path, commit: str) -> bool:
    command = ["git", f"--git-dir={mirror}", "cat-file", "-e", f"{commit}^{{commit}}"]
    return mirror.is_dir() and subprocess.run(command, capture_output=True).returncode == 0


def prepare_repo(cache_dir: Path, mirror_dir: Path, repo: PinnedRepo) -> Codebase | None:
    """The repository's `.py` files at its pinned commit, or None (with a warning) without a mirror."""
    tree = cache_dir / f"{repo.name}-{repo.commit[:12]}"
    if not tree.is_dir():
        mirror = repo.mirror(mirror_dir)
        if not has_commit(mirror, repo.commit):
            warn(f"{repo.name}: no mirror of {repo.github} with commit {repo.commit[:12]} in {mirror}. Get it with "
                 f"the search tool's `fetch` (source: github:{repo.github}), then run again. Skipping {repo.name}.")
            return None
        extract(lambda: git_archive_of_python_files(mirror, repo.commit), tree)
    return Codebase(repo.name, f"{repo.github}@{repo.commit[:12]}", tree, count_python_files(tree))


def prepare_codebases(args: argparse.Namespace) -> list[Codebase]:
    cache_dir = args.cache_dir.resolve()
    cache_dir.mkdir(parents=True, exist_ok=True)
    wanted = set(args.only or CODEBASE_NAMES)
    codebases = [prepare_django(cache_dir, args.django_version)] if DJANGO in wanted else []
    for repo in DENSE_REPOS:
        if repo.name in wanted and (codebase := prepare_repo(cache_dir, args.mirror_dir, repo)) is not None:
            codebases.append(codebase)
    return codebases


def count_python_files(tree: Path) -> int:
    return sum(1 for path in tree.rglob("*.py") if path.is_file())


# --- the tools --------------------------------------------------------------------------------


def find_executable(name: str) -> Path | None:
    executable = Path(sys.executable).parent / name
    return executable if executable.is_file() else None


def unleak_has_cache(executable: Path) -> bool:
    """Whether this unleak has a cache: its `check` then takes `--no-cache`."""
    completed = subprocess.run(
        [str(executable), "check", "--help"], capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"}
    )
    return "--no-cache" in completed.stdout


def ruff_tool(executable: Path, tree: Path, jobs: int) -> Tool:
    # --isolated: no configuration file of the tree applies; --no-cache: a cold run.
    flags = ("--isolated", "--no-cache", "--select", RUFF_RULES, "--output-format", "concise")
    return Tool(
        key=RUFF,
        label="ruff, cold (overlapping rules)",
        argv=(str(executable), "check", *flags, str(tree)),
        ok=frozenset({0, 1}),  # 1: findings reported
        findings_pattern=r"Found (\d+) errors?",
        env={"RAYON_NUM_THREADS": str(jobs)},  # ruff's thread pool, else one thread per core
    )


def libcst_runner_tool(tree: Path, jobs: int) -> Tool:
    # Run from BENCH_DIR, so bench_noop is importable and bench/.libcst.codemod.yaml is the config.
    codemod = ("-m", "libcst.tool", "codemod", "--external", "bench_noop.NoopCodemod", "--jobs", str(jobs))
    flags = ("--no-format", "--include-generated", "--hide-progress")
    return Tool(
        key=LIBCST_RUNNER,
        label="LibCST codemod runner (no-op)",
        argv=(sys.executable, *codemod, *flags, str(tree)),
        ok=frozenset({0}),
        partial=frozenset({1}),  # 1: some file failed to parse
        processed_pattern=r"Finished codemodding (\d+) files",
    )


def libcst_parse_tool(tree: Path) -> Tool:
    return Tool(
        key=LIBCST_PARSE,
        label="libcst.parse_module, 1 process",
        argv=(sys.executable, "-c", PARSE_SCRIPT, str(tree)),
        ok=frozenset({0}),
        partial=frozenset({1}),  # 1: some file failed to parse
        processed_pattern=r"Parsed (\d+) files",
    )


def unleak_check_tool(executable: Path, tree: Path, jobs: int, *, cached: bool, has_cache: bool) -> Tool:
    """`unleak check`: cold (`--no-cache` when there is a cache), or on the cache a first run fills."""
    argv = (str(executable), "check", str(tree), "--jobs", str(jobs), "--verbose")  # --verbose: the file count
    if not cached:
        return Tool(
            key=CHECK,
            label="unleak check",
            argv=(*argv, "--no-cache") if has_cache else argv,
            ok=frozenset({0, 1}),  # 1: findings reported
            partial=frozenset({2}),  # 2: some file could not be checked
            processed_pattern=r"(\d+) files found",
            findings_pattern=r"unleak: (\d+) findings",
        )
    return Tool(
        key=CACHED,
        label="unleak check, cached re-run",
        argv=argv,
        ok=frozenset({0, 1}),
        partial=frozenset({2}),
        processed_pattern=r"(\d+) files found",
        findings_pattern=r"unleak: (\d+) findings",
        before_each=lambda: run_quietly(argv),  # the first of the two runs fills the cache
    )


def unleak_apply_tool(executable: Path, codebase: Codebase, jobs: int, *, has_cache: bool) -> Tool:
    """`unleak apply` on a copy of the tree, made afresh before each run since apply writes."""
    copy = codebase.tree.with_name(codebase.tree.name + ".apply")
    argv = (str(executable), "apply", str(copy), "--jobs", str(jobs))
    return Tool(
        key=APPLY,
        label="unleak apply (fresh copy)",
        argv=(*argv, "--no-cache") if has_cache else argv,
        ok=frozenset({0}),
        partial=frozenset({2}),  # 2: some file could not be fixed
        processed_pattern=r"(\d+) files scanned",
        before_each=lambda: fresh_copy(codebase.tree, copy),
    )


def fresh_copy(tree: Path, copy: Path) -> None:
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(tree, copy, symlinks=True, ignore=shutil.ignore_patterns(UNLEAK_CACHE_FOLDER))


def run_quietly(argv: Iterable[str]) -> None:
    subprocess.run(list(argv), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@dataclass(frozen=True)
class Installed:
    unleak: Path | None
    ruff: Path | None
    unleak_has_cache: bool


def find_installed() -> Installed:
    unleak, ruff = find_executable("unleak"), find_executable("ruff")
    if unleak is None:
        warn(f"unleak is not installed next to {sys.executable}; install it with `pip install -e .`. Skipping it.")
    if ruff is None:
        warn(f"ruff is not installed next to {sys.executable}; install it with `pip install ruff`. Skipping it.")
    has_cache = unleak is not None and unleak_has_cache(unleak)
    if unleak is not None and not has_cache:
        warn("this unleak has no cache (`unleak check --help` shows no --no-cache): the cached re-run is n/a")
    return Installed(unleak, ruff, has_cache)


def tools_for(codebase: Codebase, installed: Installed, args: argparse.Namespace) -> list[Tool]:
    tree, jobs = codebase.tree, args.jobs
    tools = [ruff_tool(installed.ruff, tree, jobs)] if installed.ruff else []
    if not args.skip_libcst:
        tools += [libcst_runner_tool(tree, jobs), libcst_parse_tool(tree)]
    if installed.unleak:
        tools.append(unleak_check_tool(installed.unleak, tree, jobs, cached=False, has_cache=installed.unleak_has_cache))
        tools.append(unleak_apply_tool(installed.unleak, codebase, jobs, has_cache=installed.unleak_has_cache))
        if installed.unleak_has_cache:
            tools.append(unleak_check_tool(installed.unleak, tree, jobs, cached=True, has_cache=True))
    return tools


# --- measuring --------------------------------------------------------------------------------


def measure(tool: Tool) -> Measurement:
    """Run `tool` once under MEASURE_SCRIPT; raise if it crashed."""
    if tool.before_each is not None:
        tool.before_each()
    wrapper = subprocess.run(
        [sys.executable, "-c", MEASURE_SCRIPT, *tool.argv],
        cwd=BENCH_DIR,
        capture_output=True,
        text=True,
        env={**user_environment(), **tool.env},
    )
    output = [line for line in wrapper.stderr.splitlines() if line.strip()]
    if wrapper.returncode != 0:
        raise BenchError(f"could not run {tool.label}:\n" + indent(output))
    report = json.loads(wrapper.stdout)
    if report["returncode"] not in tool.ok | tool.partial:
        raise BenchError(f"{tool.label} crashed (exit {report['returncode']}):\n" + indent(output[-OUTPUT_TAIL_LINES:]))
    return Measurement(
        command=list(tool.argv),
        seconds=report["seconds"],
        cpu_seconds=report["cpu_seconds"],
        peak_rss_mib=report["peak_rss"] * RSS_BYTES_PER_UNIT / 2**20,
        returncode=report["returncode"],
        files_processed=last_number(tool.processed_pattern, wrapper.stderr),
        findings=last_number(tool.findings_pattern, wrapper.stderr),
        output_tail=output[-OUTPUT_TAIL_LINES:],
    )


def user_environment() -> dict[str, str]:
    """This environment as a user's shell has it: Python tools keep their compiled bytecode (a
    machine set to write none makes every run compile unleak, and LibCST, from source)."""
    return {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}


def last_number(pattern: str | None, output: str) -> int | None:
    found = re.findall(pattern, output) if pattern else []
    return int(found[-1]) if found else None


def warn_if_incomplete(tool: Tool, result: Measurement, python_files: int) -> None:
    if result.returncode in tool.partial:
        warn(f"{tool.label} exited {result.returncode}: some files could not be processed:\n" + indent(result.output_tail))
    if result.files_processed not in (None, python_files):
        warn(f"{tool.label} reports {result.files_processed} files; the tree has {python_files} .py files")


def best_of(tool: Tool, codebase: Codebase, repeat: int) -> Measurement:
    runs = []
    for run in range(1, repeat + 1):
        progress(f"{codebase.name}: timing {tool.label}, run {run} of {repeat}")
        runs.append(measure(tool))
        progress(f"  {runs[-1].seconds:.2f} s wall-clock, {runs[-1].cpu_seconds:.2f} s CPU")
    best = min(runs, key=lambda result: result.seconds)
    warn_if_incomplete(tool, best, codebase.python_files)
    return best


def verdicts(codebase: Codebase, results: dict[str, Measurement]) -> list[Verdict]:
    judged = []
    for target in TARGETS[DJANGO if codebase.name == DJANGO else "dense"]:
        ratio = target.ratio(results, lambda result: result.seconds)
        cpu_ratio = target.ratio(results, lambda result: result.cpu_seconds)
        verdict = "N/A" if ratio is None else ("PASS" if target.met(ratio) else "FAIL")
        judged.append(Verdict(target.describe(), ratio, cpu_ratio, verdict))
    return judged


def largest_unleak_rss(results: dict[str, Measurement]) -> float | None:
    sizes = [results[key].peak_rss_mib for key in UNLEAK_ROWS if key in results]
    return max(sizes) if sizes else None


# --- reporting --------------------------------------------------------------------------------


def print_details(codebase: Codebase, tools: list[Tool], results: dict[str, Measurement], repeat: int) -> None:
    print(f"\n{codebase.name} ({codebase.source}): {codebase.python_files} .py files, best of {repeat} run(s)\n")
    print(f"{'command':<34}{'seconds':>9}{'CPU s':>9}{'peak RSS':>12}{'files':>8}{'findings':>10}")
    for tool in tools:
        result = results[tool.key]
        files = "?" if result.files_processed is None else str(result.files_processed)
        findings = "" if result.findings is None else str(result.findings)
        print(f"{tool.label:<34}{result.seconds:>9.2f}{result.cpu_seconds:>9.2f}"
              f"{result.peak_rss_mib:>8.0f} MiB{files:>8}{findings:>10}")


def print_side_by_side(measured: dict[str, tuple[Codebase, dict[str, Measurement]]]) -> None:
    rows = (RUFF, LIBCST_RUNNER, CHECK, APPLY, CACHED)
    print("\nside by side, wall-clock seconds (n/a: not timed)\n")
    print(f"{'code base':<13}{'files':>7}" + "".join(f"{SHORT_LABELS[row]:>9}" for row in rows) + f"{'unleak RSS':>12}")
    for codebase, results in measured.values():
        cells = "".join(f"{results[row].seconds:>9.2f}" if row in results else f"{'n/a':>9}" for row in rows)
        rss = largest_unleak_rss(results)
        print(f"{codebase.name:<13}{codebase.python_files:>7}{cells}" + (f"{rss:>8.0f} MiB" if rss else f"{'n/a':>12}"))


def print_verdicts(judged: dict[str, list[Verdict]], memory: MemoryVerdict) -> None:
    print("\ntargets (ratios of wall-clock time; CPU time in brackets)\n")
    for name, verdicts_of_codebase in judged.items():
        for verdict in verdicts_of_codebase:
            shown = "n/a" if verdict.ratio is None else f"{verdict.ratio:.3g}x ({verdict.cpu_ratio:.3g}x CPU)"
            print(f"  {name:<13}{verdict.target:<40}{shown:<28}{verdict.verdict}")
    shown = "n/a" if memory.largest_mib is None else f"{memory.largest_mib:.0f} MiB"
    print(f"  {'all':<13}{f'largest unleak process < {PEAK_RSS_TARGET_MIB:.0f} MiB':<40}{shown:<28}{memory.verdict}")


def memory_verdict(measured: dict[str, tuple[Codebase, dict[str, Measurement]]]) -> MemoryVerdict:
    sizes = [size for _, results in measured.values() if (size := largest_unleak_rss(results)) is not None]
    largest = max(sizes) if sizes else None
    verdict = "N/A" if largest is None else ("PASS" if largest < PEAK_RSS_TARGET_MIB else "FAIL")
    return MemoryVerdict(largest, verdict)


def index_cost(tree: Path) -> dict[str, float]:
    """bench/index_cost.py on the tree: the project index's share of a check run."""
    progress("timing the project index inside `unleak check --jobs 1` on Django")
    measured = subprocess.run([sys.executable, str(BENCH_DIR / "index_cost.py"), str(tree)], capture_output=True, text=True)
    if measured.returncode != 0:
        raise BenchError("bench/index_cost.py failed:\n" + indent(measured.stderr.splitlines()[-OUTPUT_TAIL_LINES:]))
    return json.loads(measured.stdout)


def print_index_cost(index: dict[str, float]) -> None:
    share = index["index_seconds"] / index["check_seconds"]
    print(f"\nproject index (Django): {index['index_seconds']:.2f} s of a {index['check_seconds']:.2f} s `check --jobs 1` "
          f"({share:.1%}; target < 10%: {'PASS' if share < INDEX_SHARE_TARGET else 'FAIL'}); "
          f"read eagerly it would cost {index['eager_seconds']:.2f} s")


def tool_version(executable: Path | None) -> str | None:
    if executable is None:
        return None
    return subprocess.run([str(executable), "--version"], capture_output=True, text=True).stdout.strip()


def conditions(args: argparse.Namespace, installed: Installed) -> dict[str, object]:
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "jobs": args.jobs,
        "repeat": args.repeat,
        "cores": os.cpu_count(),
        "load_average_at_start": os.getloadavg()[0],
        "python": platform.python_version(),
        "libcst": metadata.version("libcst"),
        "ruff": tool_version(installed.ruff),
        "unleak_has_cache": installed.unleak_has_cache,
        "unleak_commit": git_head(BENCH_DIR.parent),
    }


def git_head(checkout: Path) -> str:
    """The commit of the checkout this script is in: with `pip install -e .`, the unleak measured."""
    command = ["git", "-C", str(checkout), "log", "-1", "--format=%h %cs %s"]
    return subprocess.run(command, capture_output=True, text=True).stdout.strip()


def indent(lines: list[str]) -> str:
    return "\n".join(f"    {line}" for line in lines)


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def warn(message: str) -> None:
    progress(f"warning: {message}")


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    measured: dict[str, tuple[Codebase, dict[str, Measurement]]] = {}
    index = None
    try:
        installed = find_installed()
        setting = conditions(args, installed)
        for codebase in prepare_codebases(args):
            tools = tools_for(codebase, installed, args)
            results = {tool.key: best_of(tool, codebase, args.repeat) for tool in tools}
            measured[codebase.name] = (codebase, results)
            print_details(codebase, tools, results, args.repeat)
        if DJANGO in measured and installed.unleak:
            index = index_cost(measured[DJANGO][0].tree)
    except BenchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    judged = {name: verdicts(codebase, results) for name, (codebase, results) in measured.items()}
    memory = memory_verdict(measured)
    print(f"\nconditions: {json.dumps(setting)}")
    print_side_by_side(measured)
    print_verdicts(judged, memory)
    if index is not None:
        print_index_cost(index)
    setting["load_average_at_end"] = os.getloadavg()[0]
    results_json = {
        "conditions": setting,
        "codebases": {
            name: {
                "source": codebase.source,
                "tree": str(codebase.tree),
                "python_files": codebase.python_files,
                "runs": {key: asdict(result) for key, result in results.items()},
                "targets": [asdict(verdict) for verdict in judged[name]],
            }
            for name, (codebase, results) in measured.items()
        },
        "memory": asdict(memory),
        "index": index,
    }
    RESULTS_FILE.write_text(json.dumps(results_json, indent=2) + "\n", encoding="utf-8")
    print(f"results written to {RESULTS_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
