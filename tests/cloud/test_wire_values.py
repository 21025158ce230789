from datetime import UTC, datetime, timedelta, timezone

import pytest

from hedge_agent.cloud.client import aws_datetime


def test_datetimes_are_sent_in_utc_with_milliseconds_and_z():
    tokyo = timezone(timedelta(hours=9))
    assert aws_datetime(datetime(2025, 1, 1, 9, 0, 0, 123456, tzinfo=tokyo)) == "2025-01-01T00:00:00.123Z"
    assert aws_datetime(datetime(2025, 1, 1, tzinfo=UTC)) == "2025-01-01T00:00:00.000Z"


def test_a_naive_datetime_is_refused_with_a_hint():
    with pytest.raises(ValueError, match="timezone-aware"):
        aws_datetime(datetime(2025, 1, 1))
