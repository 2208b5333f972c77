"""Webhook signing (checked against the standardwebhooks reference library), retry
schedule and the SSRF address policy."""

from __future__ import annotations

import base64
import random
import time
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from ccbridge.domain.egress import check_addresses, parse_networks
from ccbridge.domain.webhooks import retry, signing
from ccbridge.domain.webhooks.targets import TargetRefusedError, check_url

# A fixed test vector: secret, id, timestamp, body → signature.
VECTOR_SECRET = "whsec_" + base64.b64encode(b"ccbridge-test-vector-key-32bytes").decode()
VECTOR_ID = "0f5b3e7c-8a59-5a34-9b7e-2f0d1c9a4e11"
VECTOR_TS = 1795433102
VECTOR_BODY = b'{"type":"call.answered","data":{"params":{"agent_no":"1101"}}}'
VECTOR_SIGNATURE = "v1,VdINDji+5aXywfWids0p2l47IKiZjEbroDyNnBPrflU="


def test_signature_test_vector_matches_the_reference_library() -> None:
    ours = signing.sign(VECTOR_SECRET, VECTOR_ID, VECTOR_TS, VECTOR_BODY)
    reference = Webhook(VECTOR_SECRET).sign(VECTOR_ID, _dt(VECTOR_TS), VECTOR_BODY.decode())
    assert ours == reference == VECTOR_SIGNATURE


def test_reference_library_verifies_our_headers_and_rejects_tampering() -> None:
    now = int(time.time())
    headers = signing.headers([VECTOR_SECRET], VECTOR_ID, now, VECTOR_BODY)
    assert Webhook(VECTOR_SECRET).verify(VECTOR_BODY, headers)["type"] == "call.answered"
    with pytest.raises(WebhookVerificationError):
        Webhook(VECTOR_SECRET).verify(VECTOR_BODY.replace(b"1101", b"1102"), headers)


def test_rotation_two_secrets_both_verify() -> None:
    old, new = signing.new_secret(), signing.new_secret()
    now = int(time.time())
    headers = signing.headers([new, old], VECTOR_ID, now, VECTOR_BODY)
    assert len(headers["webhook-signature"].split()) == 2
    for secret in (old, new):
        assert Webhook(secret).verify(VECTOR_BODY, headers)
        assert signing.verify(secret, headers["webhook-signature"], VECTOR_ID, now, VECTOR_BODY)
    stranger = signing.new_secret()
    with pytest.raises(WebhookVerificationError):
        Webhook(stranger).verify(VECTOR_BODY, headers)


def test_secrets_are_whsec_base64_of_enough_bytes() -> None:
    secret = signing.new_secret()
    assert secret.startswith("whsec_")
    assert len(signing.secret_key(secret)) == signing.SECRET_BYTES
    for bad in ("nope", "whsec_!!!", "whsec_" + base64.b64encode(b"short").decode()):
        with pytest.raises(signing.InvalidSecretError):
            signing.secret_key(bad)


def test_retry_delays_grow_exponentially_with_jitter_and_cap() -> None:
    rng = random.Random(1)
    delays = [retry.retry_delay(n, rng) for n in range(1, 16)]
    assert timedelta(seconds=2.5) <= delays[0] <= timedelta(seconds=5)
    assert delays[5] > delays[2] > delays[0]
    assert max(delays) <= retry.MAX_DELAY
    assert len({d.total_seconds() for d in delays[12:]}) > 1  # jittered, not lockstep
    # Enough attempts fit in 3 days to keep trying for the whole window.
    total = sum((retry.retry_delay(n, rng) for n in range(1, 120)), timedelta())
    assert total >= retry.RETRY_FOR
    assert retry.should_give_up(timedelta(days=3))
    assert not retry.should_give_up(timedelta(days=2, hours=23))
    assert retry.should_disable(timedelta(days=5))


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.9",
        "192.168.1.20",
        "169.254.169.254",  # cloud metadata
        "100.64.0.1",  # CGNAT
        "0.0.0.0",
        "224.0.0.1",
        "::1",
        "fe80::1",
        "fd00::1",
        "::ffff:127.0.0.1",
    ],
)
def test_forbidden_addresses_are_refused(address: str) -> None:
    with pytest.raises(TargetRefusedError):
        check_addresses([address], [])


def test_public_addresses_pass_and_allow_list_opens_a_private_network() -> None:
    check_addresses(["8.8.8.8"], [])
    check_addresses(["2606:4700:4700::1111"], [])
    lan = parse_networks(["192.168.1.0/24"])
    check_addresses(["192.168.1.20"], lan)
    with pytest.raises(TargetRefusedError):
        check_addresses(["192.168.2.20"], lan)
    with pytest.raises(ValueError, match="not-a-net"):
        parse_networks(["not-a-net"])


def test_url_rules() -> None:
    assert check_url("https://crm.example.com/hook", allow_http=False) == ("crm.example.com", 443)
    for bad in (
        "http://crm.example.com/hook",
        "ftp://crm.example.com/",
        "https://user:pw@crm.example.com/",
        "https:///nohost",
    ):
        with pytest.raises(TargetRefusedError):
            check_url(bad, allow_http=False)
    assert check_url("http://10.0.0.5:8080/h", allow_http=True) == ("10.0.0.5", 8080)


def _dt(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, UTC)
