"""HostLink: a host call and the cancellation of its parent call, in-process."""

from __future__ import annotations

import itertools
import threading

import pytest

from snakepit_bridge.context import Cancellation
from snakepit_bridge.host_tools import HostLink, HostToolCancelled
from snakepit_bridge.wire import pb

JOIN_SECONDS = 5.0


class CancelledWhileChecked(Cancellation):
    """Reads as not cancelled once, while another thread cancels the call at that very moment.

    The cancelling thread runs what _Connection._cancel does: set the flag, then fail
    whatever the link has pending. It is given a moment to finish before the read
    returns, so a link that checks and registers in two steps registers too late.
    """

    def __init__(self) -> None:
        super().__init__()
        self.link: HostLink | None = None
        self.canceller: threading.Thread | None = None

    def is_set(self) -> bool:
        if self.canceller is not None:
            return super().is_set()
        assert self.link is not None
        link = self.link

        def cancel() -> None:
            self.set()
            link.fail_all("cancelled meanwhile")

        self.canceller = threading.Thread(target=cancel)
        self.canceller.start()
        self.canceller.join(0.5)  # done at once unless it waits for the link's lock
        return False


def link_with(cancelled: Cancellation, sent: list[pb.WorkerMessage]) -> HostLink:
    ids = itertools.count(1)
    return HostLink(
        sent.append,
        lambda: next(ids),
        parent_id=9,
        depth=0,
        session_id="",
        cancelled=cancelled,
        tools={"lookup": pb.ToolSpec(name="lookup")},
    )


def test_a_cancel_during_start_is_never_missed() -> None:
    cancelled = CancelledWhileChecked()
    sent: list[pb.WorkerMessage] = []
    cancelled.link = link = link_with(cancelled, sent)
    _, future = link.start("lookup", {"id": 7}, timeout=None)
    assert cancelled.canceller is not None
    cancelled.canceller.join(JOIN_SECONDS)
    assert not cancelled.canceller.is_alive()
    # Registered before fail_all ran: it was failed, not left waiting for an answer that never comes.
    with pytest.raises(HostToolCancelled, match="cancelled meanwhile"):
        future.result(timeout=0)


def test_a_call_after_the_cancel_is_refused_and_nothing_is_sent() -> None:
    cancelled = Cancellation()
    cancelled.set()
    sent: list[pb.WorkerMessage] = []
    with pytest.raises(HostToolCancelled):
        link_with(cancelled, sent).start("lookup", None, timeout=None)
    assert sent == []


def test_a_refused_send_leaves_nothing_pending() -> None:
    def refuse(_message: pb.WorkerMessage) -> None:
        raise RuntimeError("too large")

    ids = itertools.count(1)
    link = HostLink(refuse, lambda: next(ids), parent_id=9, depth=0, session_id="", cancelled=Cancellation(), tools={})
    with pytest.raises(RuntimeError):
        link.start("lookup", None, timeout=None)
    link.fail_all("end")  # would fail a leftover future; there must be none
    assert link._pending == {}
