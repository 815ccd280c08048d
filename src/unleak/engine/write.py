"""Stage 7b: write a fixed file atomically, never over a change made since it was read.

The new bytes go to a temporary file in the same folder (same file system), are flushed to
disk, get the original's permission bits, and replace the original in one `os.replace`. A
symbolic link is followed, so the link stays a link. Ctrl-C waits while the temporary file
exists, so that none is left behind: the interrupt arrives once it is renamed or removed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from unleak.errors import UserError
from unleak.engine.source import read_bytes

STALE = "changed on disk since it was read; not written"


def write_atomically(path: Path, data: bytes, expected: bytes, display: str) -> None:
    """Replace `path`'s content by `data`, if it still holds `expected`; else raise UserError."""
    target = path.resolve()
    _ensure_unchanged(target, expected, display)
    status = target.stat()
    with _interrupts_held():
        _replace(target, data, expected, display, status)


def _replace(target: Path, data: bytes, expected: bytes, display: str, status: os.stat_result) -> None:
    descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".unleak")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, stat.S_IMODE(status.st_mode))
        with contextlib.suppress(OSError):  # only root may give a file away; keep ours otherwise
            os.chown(temporary, status.st_uid, status.st_gid)
        _ensure_unchanged(target, expected, display)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


@contextlib.contextmanager
def _interrupts_held() -> Iterator[None]:
    """SIGINT stays pending inside the block (where the platform can hold signals)."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _ensure_unchanged(path: Path, expected: bytes, display: str) -> None:
    if read_bytes(path) != expected:
        raise UserError(display, STALE)
