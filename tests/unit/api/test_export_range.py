"""An export's time range is checked where the request is parsed: a faulty field is a 422."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from ccbridge.api.schemas.recordings import ExportIn

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        (T0, T0, "after range_from"),
        (T0.replace(hour=1), T0, "after range_from"),
        (T0, datetime(2026, 1, 2), "UTC offset"),  # noqa: DTZ001 (naive on purpose)
    ],
)
def test_an_empty_inverted_or_mixed_range_names_range_to(
    start: datetime, end: datetime, message: str
) -> None:
    with pytest.raises(ValidationError, match=message) as caught:
        ExportIn(range_from=start, range_to=end)
    assert [e["loc"] for e in caught.value.errors()] == [("range_to",)]


def test_a_forward_range_is_accepted() -> None:
    body = ExportIn(range_from=T0, range_to=T0.replace(day=2))
    assert body.range_to > body.range_from
