import asyncio
import selectors
import socket
import time

from ingestlab.load.timer_selector import TimerfdEpollSelector


def test_select_waits_at_least_the_timeout_and_returns():
    sel = TimerfdEpollSelector()
    try:
        for timeout in (0.0004, 0.002, 0.0105):
            start = time.monotonic()
            assert sel.select(timeout) == []
            waited = time.monotonic() - start
            assert waited >= timeout
            assert waited < timeout + 0.5  # returned: the timer really ends the wait
    finally:
        sel.close()


def test_socket_events_still_arrive_and_the_timer_never_shows_up():
    sel = TimerfdEpollSelector()
    a, b = socket.socketpair()
    try:
        sel.register(a, selectors.EVENT_READ, data="a")
        assert sel.select(0.001) == []
        b.send(b"x")
        ready = sel.select(1.0)
        assert [(key.data, events) for key, events in ready] == [("a", selectors.EVENT_READ)]
    finally:
        sel.close()
        a.close()
        b.close()


def test_asyncio_runs_on_it():
    loop = asyncio.SelectorEventLoop(TimerfdEpollSelector())
    try:
        async def sleeper():
            start = loop.time()
            await asyncio.sleep(0.003)
            return loop.time() - start

        assert loop.run_until_complete(sleeper()) >= 0.003
    finally:
        loop.close()
