"""Count the rows of the tables a report asks for; a report naming a missing table fails on its own.

Each failure is kept for the report at the end, and with it its traceback, whose frame still
holds the connection (and its cursor) that `count_rows` opened but never reached `close()`
for: one open database file per failed report. `with conn:` would not help: a sqlite3
connection's `with` commits or rolls back, and leaves the connection open. Exits 1 when
descriptors leaked, 0 when none did. Linux: counts the entries of /proc/self/fd.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import tempfile
from pathlib import Path

TABLES = ("users", "orders", "invoices")
REPORTS = ("users", "orders", "refunds", "invoices", "audit", "orders", "users", "payouts")


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def create(path: Path) -> None:
    setup = sqlite3.connect(path)
    try:
        for number, table in enumerate(TABLES):
            setup.execute(f"create table {table} (id integer primary key)")
            setup.executemany(f"insert into {table} values (?)", [(row,) for row in range(number + 2)])
        setup.commit()
    finally:
        setup.close()


def count_rows(path: Path, table: str) -> int:
    conn = sqlite3.connect(path)
    cur = conn.cursor()
    cur.execute(f"select count(*) from {table}")
    (total,) = cur.fetchone()
    cur.close()
    conn.close()
    return total


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "shop.db"
        create(path)
        before = open_descriptors()
        counts: list[str] = []
        failures: list[sqlite3.Error] = []
        for table in REPORTS:
            try:
                counts.append(f"{table}={count_rows(path, table)}")
            except sqlite3.OperationalError as error:
                failures.append(error)  # reported at the end of the run
        leaked = open_descriptors() - before
    print(f"counted {' '.join(counts)}; {len(failures)} failed ({'; '.join(map(str, failures))})")
    print(f"{leaked} descriptors leaked")
    return 1 if leaked else 0


if __name__ == "__main__":
    sys.exit(main())
