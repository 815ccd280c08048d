"""Save job snapshots as JSON; now and then the volume is full and a save fails on its own.

Each failure is kept for the report at the end, and with it its traceback, whose frames still
hold the file that was handed to `json.dump` and never reached a `close()`: one descriptor
leaked per failed save, until the service cannot open anything any more. A full volume is
simulated with Linux's `/dev/full`, where every write fails with ENOSPC ("No space left on
device"), just as on a full disk. Exits 1 when descriptors leaked, 0 when none did. Linux:
counts the entries of /proc/self/fd.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

JOBS = 12
FULL_VOLUME = Path("/dev/full")


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def save_snapshot(path: Path, state: dict[str, object]) -> None:
    handle = open(path, "w", encoding="utf-8")
    json.dump(state, handle, indent=2)
    handle.write("\n")
    handle.close()


def save_summary(path: Path, summary: dict[str, object]) -> None:
    json.dump(summary, open(path, "w", encoding="utf-8"))


def target(folder: Path, job: int, kind: str) -> Path:
    """Where a job's file goes; the volume is full for one job in four's state and another's summary."""
    full = job % 4 == (1 if kind == "state" else 3)
    return FULL_VOLUME if full else folder / f"job{job:02}.{kind}.json"


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        before = open_descriptors()
        saved = 0
        failures: list[OSError] = []
        for job in range(JOBS):
            state = {"job": job, "rows": list(range(3000))}  # larger than the write buffer
            try:
                save_snapshot(target(folder, job, "state"), state)
                save_summary(target(folder, job, "summary"), {"job": job, "done": state["rows"]})
                saved += 1
            except OSError as error:
                failures.append(error)  # reported at the end of the run
        leaked = open_descriptors() - before
        written = sorted(path.name for path in folder.iterdir())
    reasons = sorted({error.strerror or str(error) for error in failures})
    print(f"saved {saved} jobs, {len(failures)} failed ({', '.join(reasons)}), {len(written)} files written")
    print(f"{leaked} descriptors leaked")
    return 1 if leaked else 0


if __name__ == "__main__":
    sys.exit(main())
