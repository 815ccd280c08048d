"""Benchmark `unleak check` against LibCST's own codemod runner on a pinned Django source tree.

Run it with the Python of the virtualenv where unleak is installed (`pip install -e .`):

    python bench/run.py [--jobs 2] [--repeat 1] [--django-version 5.1.4]
                        [--cache-dir bench/.cache] [--skip-libcst]

The first run downloads the Django sdist with pip and extracts it into the cache folder; later
runs reuse it. On the same .py files and the same number of processes it times:

  * `unleak check DIR --jobs N --verbose` (the `unleak` next to this Python);
  * `python -m libcst.tool codemod -j N` running the no-op codemod of bench_noop.py;
  * a bare `libcst.parse_module` of every file, in one process.

Each command runs --repeat times and the fastest run is kept. The script prints a table, writes
the numbers to bench/results.json and exits 0 whether or not unleak meets its target (at least
20x faster than the LibCST runner); it exits 1 only if something crashed.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_FILE = BENCH_DIR / "results.json"
TARGET_SPEEDUP = 20.0
INDEX_SHARE_TARGET = 0.10  # the project index: under 10% of a check run
OUTPUT_TAIL_LINES = 5
RSS_BYTES_PER_UNIT = 1 if sys.platform == "darwin" else 1024  # ru_maxrss is in KiB on Linux
UNLEAK_KEY = "unleak_check"
LIBCST_RUNNER_KEY = "libcst_codemod"

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

# Written at the top of the extracted tree so unleak treats it as a project of its own: the
# repository's settings and .gitignore (which ignores the cache folder) must not apply to it.
STANDALONE_PYPROJECT = "# Written by bench/run.py: default unleak settings for this tree.\n[tool.unleak]\n"


class BenchError(Exception):
    """Something the benchmark needs failed; the message says what."""


@dataclass(frozen=True)
class Tool:
    """A command to time. Exit codes in `ok` mean success; in `partial`, success although some
    files failed (recorded, with a warning); any other exit code means it crashed."""

    key: str
    label: str
    argv: tuple[str, ...]
    ok: frozenset[int]
    partial: frozenset[int]
    processed_pattern: str | None = None  # group 1: how many files the command says it did


@dataclass(frozen=True)
class Measurement:
    command: list[str]
    seconds: float
    cpu_seconds: float  # user + system, over every process of the command
    peak_rss_mib: float
    returncode: int
    files_processed: int | None
    output_tail: list[str]


@dataclass(frozen=True)
class Summary:
    django_version: str
    tree: str
    python_files: int
    jobs: int
    repeat: int
    python: str
    libcst_version: str
    speedup: float | None  # LibCST runner seconds / unleak seconds, wall-clock: the target
    cpu_speedup: float | None  # the same with CPU seconds, steadier on a busy machine
    verdict: str  # PASS, FAIL, or N/A when either was not timed
    target_speedup: float = TARGET_SPEEDUP


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=2, help="processes for unleak and the LibCST runner (default: 2)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per command; the fastest is kept (default: 1)")
    parser.add_argument("--cache-dir", type=Path, default=BENCH_DIR / ".cache", help="where Django is downloaded and extracted")
    parser.add_argument("--skip-libcst", action="store_true", help="time unleak only")
    parser.add_argument("--django-version", default="5.1.4", help="the Django sdist to benchmark on (default: 5.1.4)")
    args = parser.parse_args(argv)
    if args.jobs < 1 or args.repeat < 1:
        parser.error("--jobs and --repeat must be at least 1")
    return args


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


def extract(sdist: Path, destination: Path) -> None:
    """Extract through a temporary sibling folder, so an interrupted run leaves no half tree."""
    progress(f"extracting {sdist.name} into {destination}")
    partial = destination.with_name(destination.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    with tarfile.open(sdist) as archive:
        extract_all(archive, partial)
    (partial / ".git").mkdir()  # a repository root: no .gitignore from above applies below it
    (partial / "pyproject.toml").write_text(STANDALONE_PYPROJECT, encoding="utf-8")
    partial.rename(destination)


def prepare_tree(cache_dir: Path, version: str) -> Path:
    """The extracted Django sources, downloading and extracting them on the first run only."""
    tree = cache_dir / f"django-{version}"
    if not tree.is_dir():
        cache_dir.mkdir(parents=True, exist_ok=True)
        extract(find_sdist(cache_dir, version) or download_sdist(cache_dir, version), tree)
    return tree


def count_python_files(tree: Path) -> int:
    return sum(1 for path in tree.rglob("*.py") if path.is_file())


def find_unleak() -> Path | None:
    executable = Path(sys.executable).parent / "unleak"
    return executable if executable.is_file() else None


def unleak_tool(executable: Path, tree: Path, jobs: int) -> Tool:
    return Tool(
        key=UNLEAK_KEY,
        label="unleak check",
        # --verbose adds one line of counts to the output, which shows how many files it found.
        argv=(str(executable), "check", str(tree), "--jobs", str(jobs), "--verbose"),
        ok=frozenset({0, 1}),  # 1: findings reported
        partial=frozenset({2}),  # 2: some file could not be checked
        processed_pattern=r"(\d+) files found",
    )


def libcst_runner_tool(tree: Path, jobs: int) -> Tool:
    # Run from BENCH_DIR, so bench_noop is importable and bench/.libcst.codemod.yaml is the config.
    codemod = ("-m", "libcst.tool", "codemod", "--external", "bench_noop.NoopCodemod", "--jobs", str(jobs))
    flags = ("--no-format", "--include-generated", "--hide-progress")
    return Tool(
        key=LIBCST_RUNNER_KEY,
        label="LibCST codemod runner (no-op)",
        argv=(sys.executable, *codemod, *flags, str(tree)),
        ok=frozenset({0}),
        partial=frozenset({1}),  # 1: some file failed to parse
        processed_pattern=r"Finished codemodding (\d+) files",
    )


def libcst_parse_tool(tree: Path) -> Tool:
    return Tool(
        key="libcst_parse",
        label="libcst.parse_module, 1 process",
        argv=(sys.executable, "-c", PARSE_SCRIPT, str(tree)),
        ok=frozenset({0}),
        partial=frozenset({1}),  # 1: some file failed to parse
        processed_pattern=r"Parsed (\d+) files",
    )


def tools_to_run(args: argparse.Namespace, tree: Path) -> list[Tool]:
    tools: list[Tool] = []
    unleak = find_unleak()
    if unleak is None:
        warn(f"unleak is not installed next to {sys.executable}; install it with `pip install -e .`. Skipping it.")
    else:
        tools.append(unleak_tool(unleak, tree, args.jobs))
    if not args.skip_libcst:
        tools += [libcst_runner_tool(tree, args.jobs), libcst_parse_tool(tree)]
    return tools


def measure(tool: Tool) -> Measurement:
    """Run `tool` once under MEASURE_SCRIPT; raise if it crashed."""
    wrapper = subprocess.run(
        [sys.executable, "-c", MEASURE_SCRIPT, *tool.argv], cwd=BENCH_DIR, capture_output=True, text=True
    )
    output = [line for line in wrapper.stderr.splitlines() if line.strip()]
    if wrapper.returncode != 0:
        raise BenchError(f"could not run {tool.label}:\n" + indent(output))
    report = json.loads(wrapper.stdout)
    if report["returncode"] not in tool.ok | tool.partial:
        raise BenchError(f"{tool.label} crashed (exit {report['returncode']}):\n" + indent(output))
    processed = re.search(tool.processed_pattern, wrapper.stderr) if tool.processed_pattern else None
    return Measurement(
        command=list(tool.argv),
        seconds=report["seconds"],
        cpu_seconds=report["cpu_seconds"],
        peak_rss_mib=report["peak_rss"] * RSS_BYTES_PER_UNIT / 2**20,
        returncode=report["returncode"],
        files_processed=int(processed.group(1)) if processed else None,
        output_tail=output[-OUTPUT_TAIL_LINES:],
    )


def warn_if_incomplete(tool: Tool, result: Measurement, python_files: int) -> None:
    if result.returncode in tool.partial:
        warn(f"{tool.label} exited {result.returncode}: some files could not be processed:\n" + indent(result.output_tail))
    if result.files_processed not in (None, python_files):
        warn(f"{tool.label} reports {result.files_processed} files; the tree has {python_files} .py files")


def best_of(tool: Tool, repeat: int, python_files: int) -> Measurement:
    runs = []
    for run in range(1, repeat + 1):
        progress(f"timing {tool.label}, run {run} of {repeat}")
        runs.append(measure(tool))
        progress(f"  {runs[-1].seconds:.2f} s wall-clock, {runs[-1].cpu_seconds:.2f} s CPU")
    best = min(runs, key=lambda result: result.seconds)
    warn_if_incomplete(tool, best, python_files)
    return best


def speedup(results: dict[str, Measurement], time: Callable[[Measurement], float]) -> float | None:
    if UNLEAK_KEY not in results or LIBCST_RUNNER_KEY not in results:
        return None
    return time(results[LIBCST_RUNNER_KEY]) / time(results[UNLEAK_KEY])


def verdict(ratio: float | None) -> str:
    if ratio is None:
        return "N/A"
    return "PASS" if ratio >= TARGET_SPEEDUP else "FAIL"


def print_table(summary: Summary, tools: list[Tool], results: dict[str, Measurement]) -> None:
    print(f"\nDjango {summary.django_version}: {summary.python_files} .py files, "
          f"--jobs {summary.jobs}, best of {summary.repeat} run(s)\n")
    print(f"{'command':<34}{'seconds':>9}{'CPU s':>9}{'peak RSS':>12}{'files':>8}")
    for tool in tools:
        result = results[tool.key]
        files = "?" if result.files_processed is None else str(result.files_processed)
        print(f"{tool.label:<34}{result.seconds:>9.2f}{result.cpu_seconds:>9.2f}{result.peak_rss_mib:>8.0f} MiB{files:>8}")
    if summary.speedup is None or summary.cpu_speedup is None:
        shown = "n/a (needs both unleak and the LibCST runner)"
    else:
        shown = f"{summary.speedup:.1f}x wall-clock, {summary.cpu_speedup:.1f}x CPU time"
    print(f"\nspeed-up of unleak over the LibCST runner: {shown} "
          f"(target: >= {summary.target_speedup:.0f}x wall-clock): {summary.verdict}")


def index_cost(tree: Path) -> dict[str, float] | None:
    """bench/index_cost.py on the tree: the project index's share of a check run."""
    if find_unleak() is None:
        return None
    progress("timing the project index inside `unleak check --jobs 1`")
    measured = subprocess.run([sys.executable, str(BENCH_DIR / "index_cost.py"), str(tree)], capture_output=True, text=True)
    if measured.returncode != 0:
        raise BenchError("bench/index_cost.py failed:\n" + indent(measured.stderr.splitlines()[-OUTPUT_TAIL_LINES:]))
    return json.loads(measured.stdout)


def indent(lines: list[str]) -> str:
    return "\n".join(f"    {line}" for line in lines)


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def warn(message: str) -> None:
    progress(f"warning: {message}")


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    try:
        tree = prepare_tree(args.cache_dir.resolve(), args.django_version)
        python_files = count_python_files(tree)
        tools = tools_to_run(args, tree)
        results = {tool.key: best_of(tool, args.repeat, python_files) for tool in tools}
        index = index_cost(tree)
    except BenchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    ratio = speedup(results, lambda result: result.seconds)
    summary = Summary(
        django_version=args.django_version,
        tree=str(tree),
        python_files=python_files,
        jobs=args.jobs,
        repeat=args.repeat,
        python=platform.python_version(),
        libcst_version=metadata.version("libcst"),
        speedup=ratio,
        cpu_speedup=speedup(results, lambda result: result.cpu_seconds),
        verdict=verdict(ratio),
    )
    print_table(summary, tools, results)
    if index is not None:
        share = index["index_seconds"] / index["check_seconds"]
        print(f"project index: {index['index_seconds']:.2f} s of a {index['check_seconds']:.2f} s `check --jobs 1` "
              f"({share:.1%}; target < 10%: {'PASS' if share < INDEX_SHARE_TARGET else 'FAIL'}); "
              f"read eagerly it would cost {index['eager_seconds']:.2f} s")
    results_json = {**asdict(summary), "runs": {key: asdict(result) for key, result in results.items()}, "index": index}
    RESULTS_FILE.write_text(json.dumps(results_json, indent=2) + "\n", encoding="utf-8")
    print(f"results written to {RESULTS_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
