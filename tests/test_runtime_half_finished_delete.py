"""Runtime proof for UL302: a per-row delete loop leaves messages half deleted before `unleak apply`, not after."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import ExampleCopy

BULK_DELETE = (
    "    conversation_ids = [conversation.id for conversation in user.conversations]\n"
    "    if conversation_ids:\n"
    "        session.query(Message).filter(Message.conversation_id.in_(conversation_ids))"
    ".delete(synchronize_session=False)\n"
    "        session.commit()\n"
)


def test_failed_delete_is_half_done_before_and_all_or_nothing_after_apply(tmp_path: Path) -> None:
    example = ExampleCopy.of("half_finished_delete", "purge.py", tmp_path)

    source = example.fails_then_works_after_apply(
        failing=(
            "delete failed: conversation 3 is locked\n"
            "messages left per conversation: 1: 0, 2: 0, 3: 2\n"
            "half deleted: the messages of some conversations are gone, the others remain\n"
        ),
        working=(
            "delete failed: conversation 3 is locked\n"
            "messages left per conversation: 1: 2, 2: 2, 3: 2\n"
            "all or nothing: the failed delete left no half-deleted conversations\n"
        ),
    )
    assert BULK_DELETE in source
    assert "    for conversation in user.conversations:\n" not in source
    assert not list(example.folder.glob("*.db")), "the database belongs in a temporary directory"
