"""The owner's fence closes before the database can hand the lease to anyone else."""

from __future__ import annotations

import pytest

from ccbridge.domain.ha.ownership import LeaseTiming, OwnershipTerm

TIMING = LeaseTiming(ttl=6.0, renew_every=1.5, margin=1.0)


def test_a_term_lasts_from_the_request_minus_the_margin() -> None:
    term = OwnershipTerm(TIMING)
    assert not term.may_act(0.0)
    term.granted(7, asked_at=100.0)
    assert term.epoch == 7
    # Counted from when the request was sent: the database's expiry is later than that.
    assert term.may_act(104.99)
    assert not term.may_act(105.0)
    assert term.remaining(103.0) == pytest.approx(2.0)


def test_a_renewal_extends_the_term_and_never_shortens_it() -> None:
    term = OwnershipTerm(TIMING)
    term.granted(1, asked_at=0.0)
    term.renewed(asked_at=3.0)
    assert term.may_act(7.9)
    assert not term.may_act(8.0)
    term.renewed(asked_at=1.0)  # a slow answer to an older request
    assert term.may_act(7.9)


def test_a_lost_term_acts_no_more_and_a_renewal_cannot_revive_it() -> None:
    term = OwnershipTerm(TIMING)
    term.granted(3, asked_at=0.0)
    assert term.lost() == 3
    assert not term.may_act(0.1)
    term.renewed(asked_at=0.2)
    assert not term.may_act(0.3)
    assert term.remaining(0.3) == 0.0
    assert term.lost() is None


@pytest.mark.parametrize(
    ("ttl", "renew", "margin"),
    [(6.0, 3.0, 1.0), (6.0, 1.0, 6.0), (6.0, 1.0, 0.0), (6.0, 0.0, 1.0)],
)
def test_timings_that_could_lose_a_term_to_one_late_renewal_are_refused(
    ttl: float, renew: float, margin: float
) -> None:
    with pytest.raises(ValueError, match=r"margin|renew"):
        LeaseTiming(ttl=ttl, renew_every=renew, margin=margin)


def test_the_worst_takeover_is_the_lease_plus_one_standby_poll() -> None:
    assert TIMING.worst_takeover() == pytest.approx(7.5)
