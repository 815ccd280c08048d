"""Stage 6: run the per-file pipeline over many files, in a process pool when it pays off."""

from __future__ import annotations

import sys
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor, as_completed

from unleak.findings import FileResult
from unleak.pipeline import Job, process

# Below this many parses per worker, starting processes costs more than it saves.
_MIN_JOBS_PER_WORKER = 4

Progress = Callable[[int, int], None]


def execute(jobs: list[Job], workers: int, progress: Progress | None = None) -> list[FileResult]:
    """Process every job; the results come back in the jobs' order whatever the parallelism."""
    if workers <= 1 or len(jobs) < workers * _MIN_JOBS_PER_WORKER:
        results = []
        for done, job in enumerate(jobs, start=1):
            results.append(process(job))
            if progress:
                progress(done, len(jobs))
        return results
    return _in_pool(jobs, workers, progress)


def _in_pool(jobs: list[Job], workers: int, progress: Progress | None) -> list[FileResult]:
    results: dict[int, FileResult] = {}
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures: dict[Future[FileResult], int] = {pool.submit(process, job): index for index, job in enumerate(jobs)}
        for done, future in enumerate(as_completed(futures), start=1):
            index = futures[future]
            results[index] = _result_of(future, jobs[index])
            if progress:
                progress(done, len(jobs))
    return [results[index] for index in range(len(jobs))]


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
