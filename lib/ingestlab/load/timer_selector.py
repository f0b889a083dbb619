"""An epoll selector whose timeouts are exact to microseconds, for the open-loop engine.

asyncio sleeps by passing the time to its next timer to the selector. epoll's timeout is in
whole milliseconds and CPython rounds it up, so every send slot of an open-loop schedule
wakes up to 1 ms late (measured here: lag p50 0.54 ms at 1,000 req/s). select() takes
microseconds but scans every socket on each wake-up, which costs more than the requests
themselves past a few dozen connections.

This selector arms a Linux timerfd (nanosecond resolution) for the requested timeout and
waits on it inside the same epoll set, so waking is exact and the cost stays O(1) in the
number of sockets. Python 3.13 has os.timerfd_*; on 3.11 libc is called through ctypes.
"""

from __future__ import annotations

import ctypes
import math
import os
import selectors

_CLOCK_MONOTONIC = 1
_TFD_NONBLOCK = os.O_NONBLOCK
_TFD_CLOEXEC = os.O_CLOEXEC
_libc = ctypes.CDLL(None, use_errno=True)


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


class TimerfdEpollSelector(selectors.EpollSelector):
    """`selectors.EpollSelector` with exact timeouts (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self._timer_fd = _libc.timerfd_create(_CLOCK_MONOTONIC, _TFD_NONBLOCK | _TFD_CLOEXEC)
        if self._timer_fd < 0:
            raise OSError(ctypes.get_errno(), "timerfd_create failed")
        # Registered on the epoll object itself, not as a selector key: select() skips fds
        # that have no key, so the timer never shows up as an event.
        self._selector.register(self._timer_fd, selectors.EVENT_READ)
        self._spec = _Itimerspec()

    def _arm(self, timeout_s: float) -> None:
        ns = max(1, math.ceil(timeout_s * 1e9))
        self._spec.it_value.tv_sec, self._spec.it_value.tv_nsec = divmod(ns, 1_000_000_000)
        if _libc.timerfd_settime(self._timer_fd, 0, ctypes.byref(self._spec), None) != 0:
            raise OSError(ctypes.get_errno(), "timerfd_settime failed")

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is None or timeout <= 0:
            return super().select(timeout)
        self._arm(timeout)
        # The epoll timeout is only a backstop now; the timerfd ends the wait on time.
        ready = super().select(timeout + 0.001)
        try:  # noqa: SIM105 -- contextlib.suppress costs an object per wake-up on the hot path
            os.read(self._timer_fd, 8)  # clear the expiry so the next wait blocks again
        except BlockingIOError:
            pass
        return ready

    def close(self) -> None:
        try:
            os.close(self._timer_fd)
        finally:
            super().close()
