"""Roles, scopes, tenant confinement and the API key format (pure)."""

from __future__ import annotations

import pytest

from ccbridge.domain.access import (
    ALL_SCOPES,
    ROLE_SCOPES,
    AccessDeniedError,
    Principal,
    Role,
    allowed_scopes,
    hash_secret,
    new_api_key,
    parse_api_key,
    scoped_tenant,
    secret_matches,
)
from ccbridge.errors import NotFoundError

PLATFORM = Principal("key:p", Role.PLATFORM_ADMIN, None, ROLE_SCOPES[Role.PLATFORM_ADMIN])
T1_ADMIN = Principal("key:a", Role.TENANT_ADMIN, "t1", ROLE_SCOPES[Role.TENANT_ADMIN])
T1_CRM = Principal("key:c", Role.CRM, "t1", ROLE_SCOPES[Role.CRM])


def test_platform_admin_picks_any_tenant_or_none() -> None:
    assert scoped_tenant(PLATFORM, None) is None
    assert scoped_tenant(PLATFORM, "t9") == "t9"


def test_others_are_confined_and_another_tenant_is_not_found() -> None:
    assert scoped_tenant(T1_CRM, None) == "t1"
    assert scoped_tenant(T1_CRM, "t1") == "t1"
    with pytest.raises(NotFoundError):
        scoped_tenant(T1_CRM, "t2")


def test_a_tenant_role_without_tenant_sees_nothing() -> None:
    odd = Principal("key:x", Role.PLATFORM_ADMIN, "t1", ALL_SCOPES)
    assert not odd.is_platform
    assert scoped_tenant(odd, None) == "t1"


def test_crm_is_read_only() -> None:
    assert all(s.endswith(":read") for s in ROLE_SCOPES[Role.CRM])
    with pytest.raises(AccessDeniedError):
        T1_CRM.require("keys:write")


def test_scopes_never_exceed_role_or_grantor() -> None:
    assert allowed_scopes(Role.CRM, None, T1_ADMIN) == ROLE_SCOPES[Role.CRM]
    assert allowed_scopes(Role.CRM, frozenset({"calls:read"}), T1_ADMIN) == {"calls:read"}
    with pytest.raises(AccessDeniedError):
        allowed_scopes(Role.CRM, frozenset({"keys:write"}), T1_ADMIN)
    with pytest.raises(AccessDeniedError):
        allowed_scopes(Role.TENANT_ADMIN, frozenset({"leases:write"}), T1_ADMIN)
    assert "leases:write" not in allowed_scopes(Role.TENANT_ADMIN, None, T1_ADMIN)


def test_api_key_round_trip_and_hash() -> None:
    key_id, secret, plaintext = new_api_key()
    assert plaintext == f"ccb_{key_id}_{secret}"
    assert parse_api_key(plaintext) == (key_id, secret)
    digest = hash_secret(secret)
    assert len(digest) == 64
    assert secret not in digest
    assert secret_matches(secret, digest)
    assert not secret_matches(secret + "x", digest)


@pytest.mark.parametrize(
    "bad", ["", "ccb_", "xyz_abcdefabcdef_" + "s" * 40, "ccb_short_" + "s" * 40]
)
def test_malformed_keys_are_refused(bad: str) -> None:
    assert parse_api_key(bad) is None
