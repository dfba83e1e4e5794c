"""An adapter that keeps unsynchronised state, so it declares itself not thread-safe.

Snakepit refuses to run it in a ``thread`` profile pool; in the default
``process`` profile each worker runs one call at a time and it is safe.
"""

from __future__ import annotations

from snakepit_bridge import Adapter, tool


class CounterAdapter(Adapter):
    """Counts calls per worker process."""

    thread_safe = False

    def setup(self) -> None:
        self.calls = 0

    @tool
    def bump(self) -> int:
        """Count one more call and return the count (read-modify-write: not thread-safe)."""
        self.calls += 1
        return self.calls
