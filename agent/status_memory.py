"""Final statuses are never downgraded: one bounded per-id memory for the whole agent.

When events for one id come from different files or arrive late (a Kannel receipt logged before its
"Sent SMS" line), a later non-final record must not move the id back from delivered to sent. The
memory remembers recent ids with a final status and strips `status` from later non-final records for
them, while their other fields still go out.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from agent.formats.transforms import is_final

STATUS_WORDS_MAX = 1024


class FinalStatusMemory:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._final: OrderedDict[str, None] = OrderedDict()
        self.stripped = 0
        self._is_final: dict[str, bool] = {}  # status word -> final?; usually a handful of distinct words

    def __call__(self, record: dict[str, Any]) -> None:
        self.apply((record,))

    def apply(self, records: Iterable[dict[str, Any]]) -> None:
        """`__call__` for many records in order (a chunk's), with one call."""
        if self.capacity == 0:
            return
        final = self._final
        finals = self._is_final
        for record in records:
            status = record.get("status")
            if status is None:
                continue
            rid = record["id"]
            final_status = finals.get(status)
            if final_status is None:
                if len(finals) >= STATUS_WORDS_MAX:  # a source that writes free text as its status: stay bounded
                    finals.clear()
                final_status = finals[status] = is_final(status)
            if final_status:
                if rid in final:
                    final.move_to_end(rid)
                else:
                    final[rid] = None
                    if len(final) > self.capacity:
                        final.popitem(last=False)
            elif rid in final:
                del record["status"]
                self.stripped += 1
