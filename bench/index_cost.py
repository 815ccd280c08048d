"""What the project index costs inside a real `unleak check` run, and what it would cost eagerly.

    python bench/index_cost.py TREE

Runs `unleak check` on TREE in this one process (`--jobs 1`, so every stage is on this clock)
with the index's entry points wrapped in timers, and prints one JSON line:

  * `check_seconds`: the whole run;
  * `index_seconds`: the time spent in the index (listing the project in the parent, and
    reading, triggering and parsing modules when a lookup reached them), part of the run;
  * `eager_seconds`: for reference, what reading every module the index could ever need would
    cost: the byte trigger over every file, and the `ast` parse and facts of those that pass.

`bench/run.py` calls it and prints the share; the target is below 10% of the check run.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from unleak.engine import indexing, runner
from unleak.settings import Overrides, SettingsResolver


_depth = [0]  # calls of wrapped functions under way: only the outermost one is counted


def timed(owner: Any, name: str, spent: list[float]) -> None:
    """Wrap `owner.name` so that its time adds up in `spent` (not twice when wrapped calls nest)."""
    original: Callable[..., Any] = getattr(owner, name)
    depth = _depth

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        depth[0] += 1
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            depth[0] -= 1
            if depth[0] == 0:
                spent[0] += time.perf_counter() - start

    setattr(owner, name, wrapper)


def eager_seconds(tree: Path) -> float:
    index = indexing.build_index(tree, SettingsResolver(Overrides()))
    start = time.perf_counter()
    source = index.source
    assert isinstance(source, indexing.ProjectFiles)
    for path in source.paths:
        source.facts(path)
    source.module_paths("")
    return time.perf_counter() - start


def main(tree: Path) -> None:
    spent = [0.0]
    timed(runner, "build_index", spent)
    for method in ("facts", "module_paths", "listening_modules"):
        timed(indexing.ProjectFiles, method, spent)
    start = time.perf_counter()
    runner.run(runner.Mode.CHECK, [tree], SettingsResolver(Overrides()), workers=1, use_cache=False)
    total = time.perf_counter() - start
    print(json.dumps({"check_seconds": total, "index_seconds": spent[0], "eager_seconds": eager_seconds(tree)}))


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve())
