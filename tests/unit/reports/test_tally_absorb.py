"""``absorb`` spells the counters out one by one (for speed): every counter must be in it."""

from __future__ import annotations

from ccbridge.domain.kpis.tally import CALL_COUNTERS, SEAT_COUNTERS, CallTally, SeatTally


def test_call_absorb_adds_every_counter_and_keeps_the_longest_wait() -> None:
    a = CallTally(**{n: i + 1 for i, n in enumerate(CALL_COUNTERS)})
    b = CallTally(**{n: 10 * (i + 1) for i, n in enumerate(CALL_COUNTERS)})
    a.absorb(b)
    for i, n in enumerate(CALL_COUNTERS):
        want = 10 * (i + 1) if n == "longest_wait_s" else 11 * (i + 1)
        assert getattr(a, n) == want, n
    assert a.inputs() == {n: float(getattr(a, n)) for n in CALL_COUNTERS}


def test_seat_absorb_adds_every_counter_and_the_reasons() -> None:
    a = SeatTally(**{n: i + 1 for i, n in enumerate(SEAT_COUNTERS)}, not_ready_by_reason={"x": 1})
    b = SeatTally(
        **{n: 10 * (i + 1) for i, n in enumerate(SEAT_COUNTERS)},
        not_ready_by_reason={"x": 2, "y": 5},
    )
    a.absorb(b)
    assert {n: getattr(a, n) for n in SEAT_COUNTERS} == {
        n: 11 * (i + 1) for i, n in enumerate(SEAT_COUNTERS)
    }
    assert a.not_ready_by_reason == {"x": 3, "y": 5}
    assert b.not_ready_by_reason == {"x": 2, "y": 5}
    assert a.inputs() == {n: float(getattr(a, n)) for n in SEAT_COUNTERS}
