"""The pure rules of tenant placement (ADR 0033)."""

from __future__ import annotations

import pytest

from ccbridge.domain.ha.placement import (
    default_placement,
    is_pbx_id,
    orphaned_placements,
    require_known_pbx,
)
from ccbridge.errors import InvalidRequestError


@pytest.mark.parametrize("value", ["default", "pbx-b", "sh.pbx_2", "x" * 64])
def test_well_formed_pbx_ids(value: str) -> None:
    assert is_pbx_id(value)


@pytest.mark.parametrize("value", ["", "a b", "a\r\nb", "a\x00", "x" * 65, "pbx/1", "北京"])
def test_malformed_pbx_ids(value: str) -> None:
    assert not is_pbx_id(value)


def test_only_a_known_pbx_is_accepted_and_the_error_names_the_field_and_the_choices() -> None:
    assert require_known_pbx("pbx-b", {"pbx-a", "pbx-b"}, field="body.pbx_id") == "pbx-b"
    with pytest.raises(InvalidRequestError) as err:
        require_known_pbx("pbx-c", {"pbx-b", "pbx-a"}, field="body.pbx_id")
    assert err.value.field == "body.pbx_id"
    assert "pbx-a, pbx-b" in err.value.detail


def test_placements_on_unknown_pbxs_are_the_orphans() -> None:
    assert orphaned_placements({"default", "pbx-b"}, {"pbx-a", "pbx-b"}) == {"default"}
    assert orphaned_placements({"pbx-a"}, {"pbx-a"}) == frozenset()


def test_the_default_placement_is_the_nodes_pbx_else_the_only_one() -> None:
    assert default_placement("pbx-a", {"pbx-b"}) == "pbx-a"
    assert default_placement(None, {"pbx-b"}) == "pbx-b"
    assert default_placement(None, {"pbx-a", "pbx-b"}) is None
    assert default_placement(None, set()) is None
