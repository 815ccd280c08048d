"""The few git operations `unleak bulk` needs, run with the `git` executable.

Every call is `git -C FOLDER ...` with a fixed environment (no prompts, no pager), and a failing
call raises `GitError` with git's own last line of complaint.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

# A git URL: scheme://..., or the scp-like user@host:path.
_URL = re.compile(r"^[a-z][a-z0-9+.-]*://|^[\w.-]+@[\w.-]+:", re.IGNORECASE)

# When the repository (or the worker) has no identity configured, commits are made by unleak.
_FALLBACK_IDENTITY = ("-c", "user.name=unleak", "-c", "user.email=unleak@localhost")


class GitError(Exception):
    """A git command that failed; the message is git's explanation."""


def is_url(repository: str) -> bool:
    return bool(_URL.match(repository))


def git(folder: Path, *args: str) -> str:
    """Run `git -C folder args...` and return its standard output as text (stripped)."""
    return _run(folder, *args).decode("utf-8", "replace").strip()


def _run(folder: Path, *args: str) -> bytes:
    environment = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_PAGER": "cat", "LC_ALL": "C"}
    completed = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, env=environment, check=False)
    if completed.returncode != 0:
        output = (completed.stderr or completed.stdout).decode("utf-8", "replace")
        raise GitError(f"git {args[0]}: {_complaint(output) or f'exit status {completed.returncode}'}")
    return completed.stdout


def _complaint(output: str) -> str:
    """git's reason: its first `fatal:` or `error:` line (without the prefix), else its last line."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for line in lines:
        for prefix in ("fatal: ", "error: "):
            if line.startswith(prefix):
                return line[len(prefix) :]
    return lines[-1] if lines else ""


def clone(url: str, destination: Path) -> None:
    git(destination.parent, "clone", "--quiet", url, destination.name)


def top_level(folder: Path) -> Path:
    """The root of the working tree holding `folder` (GitError when it is not in one)."""
    if not folder.is_dir():
        raise GitError("no such folder")
    try:
        return Path(git(folder, "rev-parse", "--show-toplevel"))
    except GitError:
        raise GitError("not a git repository") from None


def is_bare_repository(folder: Path) -> bool:
    try:
        return folder.is_dir() and git(folder, "rev-parse", "--is-bare-repository") == "true"
    except GitError:
        return False


def has_uncommitted_changes(repository: Path) -> bool:
    return bool(git(repository, "status", "--porcelain", "--untracked-files=no"))


def branch_exists(repository: Path, branch: str) -> bool:
    """Whether `branch` exists here, or on origin as this repository last saw it."""
    for ref in (f"refs/heads/{branch}", f"refs/remotes/origin/{branch}"):
        try:
            git(repository, "rev-parse", "--verify", "--quiet", ref)
            return True
        except GitError:
            continue
    return False


def valid_branch_name(branch: str) -> bool:
    try:
        git(Path("."), "check-ref-format", "--branch", branch)
        return True
    except GitError:
        return False


def add_detached_worktree(repository: Path, destination: Path) -> None:
    """A new working tree of HEAD at `destination`, on no branch (the repository's own tree is untouched)."""
    git(repository, "rev-parse", "--verify", "--quiet", "HEAD^{commit}")
    git(repository, "worktree", "add", "--quiet", "--detach", str(destination), "HEAD")


def remove_worktree(repository: Path, worktree: Path) -> None:
    git(repository, "worktree", "remove", "--force", str(worktree))


def diff_against_head(worktree: Path) -> bytes:
    """The working tree's changes as a patch that `git apply` takes (binary-safe, no colour)."""
    return _run(worktree, "diff", "--no-color", "--no-ext-diff", "--binary", "HEAD")


def commit_on_new_branch(worktree: Path, branch: str, message: str, files: list[str]) -> str:
    """Create `branch` at the worktree's HEAD, commit `files` on it; the new commit's id."""
    git(worktree, "switch", "--quiet", "--create", branch)
    git(worktree, "add", "--", *files)
    identity = () if _has_identity(worktree) else _FALLBACK_IDENTITY
    git(worktree, *identity, "commit", "--quiet", "--no-verify", "--message", message)
    return git(worktree, "rev-parse", "HEAD")


def push(repository: Path, branch: str) -> None:
    git(repository, "push", "--quiet", "origin", f"refs/heads/{branch}:refs/heads/{branch}")


def _has_identity(folder: Path) -> bool:
    try:
        return bool(git(folder, "config", "user.email")) and bool(git(folder, "config", "user.name"))
    except GitError:
        return False
