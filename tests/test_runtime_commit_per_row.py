"""Runtime proof for UL302's per-object form: a commit per deleted row leaves tokens half deleted before `unleak apply`, not after."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import ExampleCopy


def test_failed_revocation_is_half_done_before_and_all_or_nothing_after_apply(tmp_path: Path) -> None:
    example = ExampleCopy.of("commit_per_row", "revoke.py", tmp_path)

    source = example.fails_then_works_after_apply(
        failing=(
            "revoke failed: token 3 is locked\ntokens left: 3, 4, 5\nhalf revoked: some tokens are gone, the others remain\n"
        ),
        working=(
            "revoke failed: token 3 is locked\ntokens left: 1, 2, 3, 4, 5\n"
            "all or nothing: the failed revocation left no tokens half revoked\n"
        ),
    )
    assert "    for token in tokens:\n        session.delete(token)\n    if tokens:\n        session.commit()\n" in source
