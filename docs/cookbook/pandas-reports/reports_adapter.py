"""pandas work in process pools.

pandas code is rarely thread-safe and holds the GIL for most operations, so
the default ``process`` profile fits: one call at a time per process, as many
processes as cores. Records arrive as JSON; results go back as plain lists of
dicts (``DataFrame.to_dict("records")``), which the bridge carries as JSON.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from snakepit_bridge import Adapter, ToolError, tool


class ReportsAdapter(Adapter):
    """Aggregations over records sent by the host."""

    @tool(description="Group records by one column and aggregate another")
    def summarize(self, records: list[dict[str, Any]], by: str, value: str) -> list[dict[str, Any]]:
        frame = pd.DataFrame.from_records(records)
        missing = [column for column in (by, value) if column not in frame.columns]
        if missing:
            raise ToolError("INVALID_ARGUMENTS", f"records have no column {missing[0]!r}", {"columns": list(frame.columns)})
        summary = frame.groupby(by, sort=True)[value].agg(["count", "sum", "mean"]).reset_index()
        # numpy scalars become Python numbers through the bridge's serialization rule.
        return summary.to_dict("records")
