"""The final-status memory stays bounded whatever the status words (invariant 4)."""

from agent.status_memory import STATUS_WORDS_MAX, FinalStatusMemory


def test_free_text_statuses_do_not_grow_the_word_cache_without_bound() -> None:
    memory = FinalStatusMemory(10)
    memory.apply({"id": f"m{i}", "status": f"queued at step {i}"} for i in range(3 * STATUS_WORDS_MAX))
    assert len(memory._is_final) <= STATUS_WORDS_MAX
    record = {"id": "x", "status": "delivered"}
    memory(record)
    late = {"id": "x", "status": "sent"}
    memory(late)
    assert "status" not in late  # still never downgrades
