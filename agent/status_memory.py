"""Final statuses are never downgraded: one bounded per-id memory for the whole agent.

When events for one id come from different files or arrive late (a Kannel receipt logged before its
"Sent SMS" line), a later non-final record must not move the id back from delivered to sent. The
memory remembers recent ids with a final status and strips `status` from later non-final records for
them, while their other fields still go out.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from agent.formats.transforms import is_final


class FinalStatusMemory:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._final: OrderedDict[str, None] = OrderedDict()
        self.stripped = 0
        self._is_final: dict[str, bool] = {}  # status word -> final?; a handful of distinct words


    def __call__(self, record: dict[str, Any]) -> None:
        status = record.get("status")
        if status is None or self.capacity == 0:
            return
        rid = record["id"]
        final = self._final
        final_status = self._is_final.get(status)
        if final_status is None:
            final_status = self._is_final[status] = is_final(status)
        if final_status:
            final[rid] = None
            final.move_to_end(rid)
            if len(final) > self.capacity:
                final.popitem(last=False)
        elif rid in final:
            del record["status"]
            self.stripped += 1
