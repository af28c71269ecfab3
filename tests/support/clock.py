"""The one fake clock of the test tiers: time moves only when a test sleeps or advances it."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class FakeClock:
    """Seconds (a monotonic or wall clock, as the code under test reads it).

    Attributes:
        now: The current time in seconds.
        sleeps: Every ``sleep`` asked for, in order (seconds).
    """

    now: float = 1_000.0
    sleeps: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        """The current time (pass the clock itself where a ``() -> float`` is expected)."""
        return self.now

    clock = __call__  # for code that takes ``clock=fake.clock`` next to ``sleep=fake.sleep``

    def sleep(self, seconds: float) -> None:
        """Record a sleep and move time by it (never blocks)."""
        assert seconds >= 0, f"sleep({seconds}): a negative sleep is a bug in the caller"
        self.sleeps.append(seconds)
        self.now += seconds

    def advance(self, seconds: float) -> None:
        """Move time forward without recording a sleep."""
        self.now += seconds
