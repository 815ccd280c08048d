"""Stage 6: run the per-file pipeline over many files, in a process pool when it pays off.

The pipeline (LibCST, the rules) is imported where it runs: in this process for a run without
a pool, once per worker otherwise (the pool's initializer); never for a run with no job.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor, as_completed

from unleak.engine.findings import FileResult
from unleak.engine.jobs import Job
from unleak.knowledge.project import ProjectIndex

# Parsing one file with LibCST costs tens to hundreds of milliseconds, a forked worker a few:
# a pool pays off from two files on.
_MIN_JOBS_FOR_POOL = 2

Progress = Callable[[int, int], None]


def execute(
    jobs: list[Job], workers: int, indexes: dict[str, ProjectIndex], progress: Progress | None = None
) -> list[FileResult]:
    """Process every job; the results come back in the jobs' order whatever the parallelism.
    Each process receives the project `indexes` once, before its first job."""
    if not jobs:
        return []
    if workers <= 1 or len(jobs) < _MIN_JOBS_FOR_POOL:
        _start_worker(indexes)
        results = []
        for done, job in enumerate(jobs, start=1):
            results.append(process(job))
            if progress:
                progress(done, len(jobs))
        return results
    return _in_pool(jobs, workers, indexes, progress)


def _in_pool(
    jobs: list[Job], workers: int, indexes: dict[str, ProjectIndex], progress: Progress | None
) -> list[FileResult]:
    results: dict[int, FileResult] = {}
    largest_first = sorted(range(len(jobs)), key=lambda index: -len(jobs[index].raw))
    processes = min(workers, len(jobs))
    with ProcessPoolExecutor(max_workers=processes, initializer=_start_worker, initargs=(indexes,)) as pool:
        futures: dict[Future[FileResult], int] = {pool.submit(process, jobs[index]): index for index in largest_first}
        for done, future in enumerate(as_completed(futures), start=1):
            index = futures[future]
            results[index] = _result_of(future, jobs[index])
            if progress:
                progress(done, len(jobs))
    return [results[index] for index in range(len(jobs))]


def _start_worker(indexes: dict[str, ProjectIndex]) -> None:
    """A worker's set-up (or this process's, without a pool): the pipeline's imports, and the
    run's project indexes."""
    from unleak.engine import pipeline

    pipeline.install_indexes(indexes)


def process(job: Job) -> FileResult:
    """`pipeline.process` (imported by `_start_worker`: a dictionary look-up here)."""
    from unleak.engine import pipeline

    return pipeline.process(job)


def _result_of(future: Future[FileResult], job: Job) -> FileResult:
    try:
        return future.result()
    except Exception as error:  # a worker that died takes only its own file down
        failure = f"internal error: worker failed with {type(error).__name__}: {error}"
        return FileResult(display=job.display, path=job.path, original=job.raw, error=failure)


def terminal_progress(done: int, total: int) -> None:
    """A one-line progress counter on stderr (only used when stderr is a terminal)."""
    end = "\n" if done == total else ""
    sys.stderr.write(f"\runleak: {done}/{total} files parsed{end}")
    sys.stderr.flush()
