"""What a failed delivery attempt leads to: backoff within a round, then a long wait that grows to a cap."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from chalicelib.domain.deliveries import FAILED_RETRY_CAP, FAILED_RETRY_FIRST, plan_retry

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def plan(attempts_before: int, retry_after: int | None = None):
    return plan_retry(
        attempts_before, now=NOW, retry_after=retry_after, max_attempts=5, base_delay_ms=1000, random=lambda: 0.999
    )


def test_within_a_round_the_wait_is_jittered_exponential_backoff_or_the_receivers_retry_after():
    first, third, told = plan(0), plan(2), plan(2, retry_after=42)

    assert (first.failed, first.attempts, first.delay_seconds) == (False, 1, 1)
    assert third.delay_seconds == 4
    assert told.delay_seconds == 42 and told.next_attempt_at == NOW + timedelta(seconds=42)


def test_out_of_attempts_the_watch_fails_and_is_tried_again_after_a_wait_that_doubles_up_to_an_hour():
    rounds = [plan(attempts) for attempts in range(4, 14)]

    assert all(retry.failed and retry.delay_seconds is None for retry in rounds)
    waits = [retry.next_attempt_at - NOW for retry in rounds]
    assert waits[:4] == [FAILED_RETRY_FIRST * factor for factor in (1, 2, 4, 8)]
    assert waits[-1] == FAILED_RETRY_CAP and max(waits) == FAILED_RETRY_CAP
    assert waits == sorted(waits)
