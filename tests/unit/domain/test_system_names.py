"""Which PBX made a call id, and which system names may prefix call ids (ADR 0033 step 4)."""

from __future__ import annotations

import pytest

from ccbridge.domain.ha.system_names import clash_reason, describe, made_by, shape_problem


@pytest.mark.parametrize(
    ("system_name", "call_id", "made"),
    [
        ("", "1795433102.18", True),
        ("", "pbx-b-1795433102.18", False),
        ("pbx-b", "pbx-b-1795433102.18", True),
        ("pbx-b", "1795433102.18", False),
        ("pbx", "pbx-b-1795433102.18", False),  # a shorter name is no prefix of another's ids
        ("pbx-b", "pbx-b-1795433102", False),
        ("pbx-b", "pbx-b-x1795433102.18", False),
        ("", "ccb-0123456789abcdef0123", False),  # ccbridge's own Originate ChannelId
        ("a.b", "a.b-1.2", True),
    ],
)
def test_made_by(system_name: str, call_id: str, made: bool) -> None:
    assert made_by(system_name, call_id) is made


@pytest.mark.parametrize("name", ["", "pbx-b", "ast_1.sh", "A" * 40])
def test_names_that_fit_a_call_id(name: str) -> None:
    assert shape_problem(name) is None


@pytest.mark.parametrize("name", ["-pbx", "pbx b", "pbx\r\nX", "a" * 41, "é"])
def test_names_that_do_not(name: str) -> None:
    problem = shape_problem(name)
    assert problem is not None
    assert repr(name) in problem
    assert "asterisk.conf" in problem


def test_a_clash_names_both_pbxs_the_name_and_the_way_out() -> None:
    reason = clash_reason("pbx-b", "ast1", "pbx-a")
    assert "'pbx-b'" in reason
    assert "'pbx-a'" in reason
    assert "'ast1'" in reason
    assert "ccbridge pbx forget pbx-a" in reason
    assert "no systemname" in clash_reason("pbx-b", "", "pbx-a")
    assert describe("") == "none (no systemname in asterisk.conf)"
