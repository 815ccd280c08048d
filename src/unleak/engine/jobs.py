"""What the parent process hands the per-file pipeline (`unleak.engine.pipeline`) for one file.

Plain data, and a module of its own, so that the parent (discovery, the byte prefilter, the
cache) never imports the pipeline, and with it LibCST, for files it does not process itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from unleak.settings import Settings


@dataclass(frozen=True)
class Job:
    display: str
    path: Path | None  # None when the source came from stdin
    raw: bytes
    rule_codes: tuple[str, ...]  # the selected rules whose triggers occur in `raw`
    settings: Settings
    fixing: bool  # False: only report (check); True: apply fixes (diff, apply)
    project_root: str | None = None  # the project whose index the file's rules may ask
    proposing: bool = False  # check only: also give each finding its fix as edits (see engine.edits)
    selected: tuple[str, ...] = ()  # every rule selected for the file: those a fix may come to trigger
