"""Word statistics: an adapter written against the installed snakepit-bridge only."""

from __future__ import annotations

from collections import Counter

from snakepit_bridge import Adapter, tool


class TextAdapter(Adapter):
    """Counts words, leaving out a few stop words."""

    def setup(self) -> None:
        self.stop_words = frozenset({"a", "an", "and", "of", "the"})

    @tool
    def stats(self, text: str, top: int = 3) -> dict[str, object]:
        """The number of words in `text` and its `top` most frequent ones, with their counts."""
        words = [word.strip(".,;:!?\"'").lower() for word in text.split()]
        counts = Counter(word for word in words if word and word not in self.stop_words)
        return {"words": len(words), "top": counts.most_common(top)}

    @tool
    def flip(self, data: bytes) -> bytes:
        """`data` reversed: bytes in, bytes out (large ones travel through shared memory)."""
        return data[::-1]
