"""Import sensor readings from many files; a file with a bad reading fails on its own.

Each failure is kept for the report at the end, and with it its traceback, whose frame still
holds the file that `read_total` opened but never reached `close()` for: one descriptor leaked
per bad file, until a long-running importer hits "Too many open files" (seed 004 #2).
Exits 1 when descriptors leaked, 0 when none did. Linux: counts the entries of /proc/self/fd.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

FILES = 40


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def read_total(path: Path) -> tuple[str, int]:
    handle = open(path, encoding="utf-8")
    sensor = handle.readline().strip()
    total = 0
    for line in handle:
        total += int(line)
    handle.close()
    return sensor, total


def write_readings(folder: Path) -> None:
    for number in range(FILES):
        last = "oops" if number % 4 == 3 else "3"  # every fourth file has a bad reading
        (folder / f"sensor{number:02}.txt").write_text(f"sensor-{number}\n1\n2\n{last}\n", encoding="utf-8")


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_readings(folder)
        before = open_descriptors()
        totals: dict[str, int] = {}
        failures: list[ValueError] = []
        for path in sorted(folder.glob("*.txt")):
            try:
                sensor, total = read_total(path)
                totals[sensor] = total
            except ValueError as error:
                failures.append(error)  # reported at the end of the run
        leaked = open_descriptors() - before
    print(f"imported {len(totals)} files, {len(failures)} failed")
    print(f"{leaked} descriptors leaked")
    return 1 if leaked else 0


if __name__ == "__main__":
    sys.exit(main())
