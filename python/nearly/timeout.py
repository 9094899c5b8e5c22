"""faiss's TimeoutGuard: a time limit on the nearly calls of a block.

    with nearly.TimeoutGuard(0.05):
        D, I = index.search(xq, 10)   # raises nearly.TimedOutError past 50 ms

The long loops of every family (search, add, train, k-means, encoding)
check the calling thread's deadline where they check for Ctrl-C, and stop
the same way: a search returns nothing, an add keeps what it had linked or
rolls back as it does on KeyboardInterrupt. TimedOutError is a RuntimeError
(what faiss raises) and a TimeoutError.

Unlike faiss's (a process-wide callback), the deadline is the calling
thread's: a guard in one thread never cuts another thread's work short.
Nested guards keep the earlier deadline. A call that is already past its
slowest point (a last batch of work between two checks, a few ms at most
in nearly's loops) may finish slightly after the deadline."""
import math

from . import _nearly


class TimeoutGuard:
    def __init__(self, timeout_in_seconds):
        t = float(timeout_in_seconds)
        if not (t > 0 and math.isfinite(t)):
            raise ValueError(f"TimeoutGuard: the timeout must be a positive number of seconds, got {timeout_in_seconds!r}")
        self.timeout = t
        self._previous = []

    def __enter__(self):
        previous = _nearly._thread_deadline()
        deadline = _nearly._steady_seconds() + self.timeout
        if previous > 0:
            deadline = min(deadline, previous)
        self._previous.append(previous)
        _nearly._set_thread_deadline(deadline)
        return self

    def __exit__(self, exc_type, exc, tb):
        _nearly._set_thread_deadline(self._previous.pop())
        return False
