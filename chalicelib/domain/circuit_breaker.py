"""Per-repository circuit breaker: after too many consecutive git failures, stop trying for a while."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Circuit:
    consecutive_failures: int
    open_until: datetime | None

    def is_open(self, now: datetime) -> bool:
        return self.open_until is not None and self.open_until > now


@dataclass(frozen=True)
class AfterFailure:
    circuit: Circuit
    opened: bool  # this failure opened the circuit: apps get one sync_failed for it


def after_failure(circuit: Circuit, *, now: datetime, threshold: int, cooldown: timedelta) -> AfterFailure:
    """Count a failure; open the circuit when the count reaches the threshold and it is not open already.

    A failed half-open try (the cooldown has passed, the count is still at or past the threshold) opens
    it again without another notice: apps hear once per opening that a closing did not end.
    """
    failures = circuit.consecutive_failures + 1
    if failures < threshold:
        return AfterFailure(Circuit(failures, None), opened=False)
    first_opening = circuit.consecutive_failures < threshold
    return AfterFailure(Circuit(failures, now + cooldown), opened=first_opening)


CLOSED = Circuit(consecutive_failures=0, open_until=None)
