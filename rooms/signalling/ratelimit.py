"""A token bucket per socket (and a second one for reactions)."""

from __future__ import annotations

import time


class TokenBucket:
    """``rate_per_s`` tokens per second up to ``burst``; ``take()`` spends one and says whether there was one.

    ``clock``: seconds, monotonic (injectable for tests)."""

    def __init__(self, *, rate_per_s: float, burst: int, clock=time.monotonic):
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._at = clock()

    def take(self) -> bool:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate_per_s)
        self._at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False
