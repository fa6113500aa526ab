"""When to try a webhook again, and what a receiver's answer means for it (docs/protocol.md §1.5)."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum


class Answer(StrEnum):
    """What a receiver's answer means for the change it was sent."""

    DELIVERED = "delivered"  # 2xx, whole and in time: acknowledge it
    GONE = "gone"  # 410: stop sending to this app until it is resumed
    THROTTLED = "throttled"  # 429 or 503: wait as long as Retry-After says, then try again
    FAILED = "failed"  # anything else, or no answer at all: back off and try again


SIX_HOURS_MS = 6 * 3600 * 1000
# Past 2**62 the cap wins for any sane base, and Python would otherwise build ever larger integers.
_MAX_DOUBLINGS = 62


def backoff_delay_ms(attempt: int, base_ms: int, *, random: Callable[[], float], cap_ms: int = SIX_HOURS_MS) -> int:
    """Delay before retry number `attempt` (1 for the first retry): full jitter, uniform in [0, min(cap, base·2ⁿ⁻¹)].

    Full jitter spreads the retries of many watches that failed together instead of moving the herd in step.
    """
    if attempt < 1:
        raise ValueError("attempt counts from 1")
    if base_ms < 0 or cap_ms < 0:
        raise ValueError("delays cannot be negative")
    ceiling = min(cap_ms, base_ms << min(attempt - 1, _MAX_DOUBLINGS))
    # random() is in [0, 1), so this is uniform over the integers 0..ceiling, both ends included.
    return min(ceiling, math.floor(random() * (ceiling + 1)))


def retry_after_seconds(header_value: str | None, now: datetime, *, floor: int = 1, ceiling: int = 3600) -> int | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), clamped; None when absent or junk.

    Clamped because the receiver controls the value: 0 would make us hammer it, a year would stall the watch.
    """
    if header_value is None:
        return None
    value = header_value.strip()
    if not value:
        return None
    if value.isascii() and value.isdigit():
        seconds = int(value)
    else:
        seconds = _seconds_until(value, now)
        if seconds is None:
            return None
    return max(floor, min(ceiling, seconds))


def classify_status(status_code: int | None) -> Answer:
    """None (no answer at all) and 3xx, which is never followed, fail."""
    if status_code is None:
        return Answer.FAILED
    if 200 <= status_code < 300:
        return Answer.DELIVERED
    if status_code == 410:
        return Answer.GONE
    if status_code in (429, 503):
        return Answer.THROTTLED
    return Answer.FAILED


def _seconds_until(http_date: str, now: datetime) -> int | None:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    try:
        moment = parsedate_to_datetime(http_date)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        # RFC 5322's "-0000" means UTC with no claim about local time; HTTP-dates are always GMT.
        moment = moment.replace(tzinfo=UTC)
    return math.ceil((moment - now).total_seconds())
