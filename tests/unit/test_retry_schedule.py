"""Backoff with full jitter, Retry-After parsing and the classification of receivers' answers."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.domain import retry_schedule
from chalicelib.domain.retry_schedule import backoff_delay_ms, classify_status, retry_after_seconds

NOW = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
JUST_UNDER_ONE = 1 - 2**-53


@pytest.mark.parametrize(("attempt", "ceiling"), [(1, 1000), (2, 2000), (3, 4000), (10, 512_000)])
def test_backoff_ceiling_doubles_with_each_attempt(attempt, ceiling):
    assert backoff_delay_ms(attempt, 1000, random=lambda: JUST_UNDER_ONE) == ceiling
    assert backoff_delay_ms(attempt, 1000, random=lambda: 0.0) == 0


def test_backoff_is_capped():
    assert backoff_delay_ms(40, 1000, random=lambda: JUST_UNDER_ONE) == retry_schedule.SIX_HOURS_MS
    assert backoff_delay_ms(10_000, 1000, random=lambda: JUST_UNDER_ONE, cap_ms=5000) == 5000


def test_backoff_is_spread_over_the_whole_range():
    rng = random.Random(7)  # noqa: S311 - reproducible, not secret

    delays = [backoff_delay_ms(4, 1000, random=rng.random) for _ in range(5000)]

    assert min(delays) >= 0
    assert max(delays) <= 8000
    assert min(delays) < 400
    assert max(delays) > 7600
    assert 3600 < sum(delays) / len(delays) < 4400


def test_backoff_attempts_count_from_one():
    with pytest.raises(ValueError):
        backoff_delay_ms(0, 1000, random=lambda: 0.5)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("120", 120),
        (" 7 ", 7),
        ("0", 1),
        ("999999999999", 3600),
        ((NOW + timedelta(seconds=90)).strftime("%a, %d %b %Y %H:%M:%S GMT"), 90),
        ((NOW - timedelta(days=1)).strftime("%a, %d %b %Y %H:%M:%S GMT"), 1),
        ((NOW + timedelta(days=30)).strftime("%a, %d %b %Y %H:%M:%S GMT"), 3600),
    ],
    ids=["seconds", "spaces", "zero", "huge", "http-date", "past-date", "far-date"],
)
def test_retry_after_is_parsed_and_clamped(header, expected):
    assert retry_after_seconds(header, NOW) == expected


@pytest.mark.parametrize("header", [None, "", "soon", "-5", "1.5", "Mon, 01 Jan 99999 00:00:00 GMT", "١٢"])
def test_retry_after_that_means_nothing_is_none(header):
    assert retry_after_seconds(header, NOW) is None


def test_retry_after_bounds_are_configurable():
    assert retry_after_seconds("5", NOW, floor=10, ceiling=60) == 10
    assert retry_after_seconds("500", NOW, floor=10, ceiling=60) == 60


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (200, "delivered"),
        (201, "delivered"),
        (204, "delivered"),
        (299, "delivered"),
        (410, "gone"),
        (429, "throttled"),
        (503, "throttled"),
        (301, "failed"),
        (302, "failed"),
        (308, "failed"),
        (400, "failed"),
        (404, "failed"),
        (500, "failed"),
        (502, "failed"),
        (None, "failed"),
    ],
)
def test_classify_status_sorts_answers_into_delivered_gone_throttled_and_failed(status, expected):
    assert classify_status(status) == expected
