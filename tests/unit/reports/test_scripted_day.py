"""The four reports against a hand-computed table for the scripted day (see scripted_day.py)."""

from __future__ import annotations

import pytest

from ccbridge.domain.kpis.settings import KpiSettings
from ccbridge.domain.kpis.tally import CallTally
from ccbridge.domain.reports.call_attributes import PrefixCache, call_attributes_report
from ccbridge.domain.reports.intervals import Granularity
from ccbridge.domain.reports.model import Dimension
from ccbridge.domain.reports.operations import operations_report
from ccbridge.domain.reports.seat_detail import seat_detail_report
from ccbridge.domain.reports.seat_time import seat_time_report, span_pieces, tally_seats
from ccbridge.domain.reports.service_level import service_level_report, tally_calls
from tests.unit.reports.scripted_day import CALLS, SPANS, UNTIL, at

SETTINGS = KpiSettings(service_level_seconds=30, short_abandon_seconds=5, billable_seconds=15)
HALF = Granularity.MIN30


def _rows(table, key="interval_start"):  # type: ignore[no-untyped-def]
    return {(r[key][11:16], r.get("group", r.get("agent_no"))): r for r in table.rows}


def test_service_level_per_half_hour_matches_the_hand_computed_table() -> None:
    rows = _rows(service_level_report(CALLS, SPANS, SETTINGS, HALF))
    first = rows[("09:00", "")]
    # 09:00-09:30 holds C1..C5 (C5 counts where it was queued, though its talk ends 09:30:05).
    assert first["offered"] == 5
    assert first["answered"] == 3  # C1, C2, C5
    assert first["short_abandoned"] == 1  # C3: 3 s < 5 s
    assert first["abandoned"] == 1  # C4: 60 s; C3 is short, so 2 - 1
    assert first["answer_rate"] == 75.0  # 3 / (5 - 1)
    assert first["service_level"] == 50.0  # C1 (10 s) and C5 (5 s) within 30 s: 2 / (5 - 1)
    assert first["abandon_rate"] == 25.0  # 1 / (5 - 1)
    assert first["asa"] == pytest.approx((10 + 40 + 5) / 3, abs=1e-4)  # 18.3333
    assert first["average_talk"] == 70.0  # (120 + (60 + 20) + 10) / 3
    assert first["aht"] == 90.0  # (210 talk + 30 + 20 + 10 ACW) / 3
    assert first["longest_wait"] == 60.0  # C4
    assert first["transfers"] == 1  # C2
    assert first["calls_over_15s"] == 2  # C1 (120 s), C2 (80 s); C5 talked 10 s
    second = rows[("09:30", "")]
    # 09:30-10:00: C6 inbound (wait 20 s, talk 40 s), C7 outbound (talk 50 s).
    assert (second["offered"], second["answered"], second["service_level"]) == (1, 1, 100.0)
    assert (second["asa"], second["average_talk"], second["aht"]) == (20.0, 40.0, 40.0)
    assert second["calls_over_15s"] == 2  # C6 40 s, C7 50 s
    assert second["abandon_rate"] == 0.0
    assert set(rows) == {("09:00", ""), ("09:30", "")}


def test_service_level_by_skill_group_and_by_agent() -> None:
    by_group = _rows(service_level_report(CALLS, SPANS, SETTINGS, HALF, Dimension.SKILL_GROUP))
    assert by_group[("09:30", "support")]["offered"] == 1
    assert by_group[("09:30", "")]["offered"] == 0  # C7: outbound, no skill group
    by_agent = _rows(service_level_report(CALLS, SPANS, SETTINGS, HALF, Dimension.AGENT))
    # A call belongs to the agent who answered it: C1 and C5 to A1, C2 to A2 (not A1).
    assert by_agent[("09:00", "A1")]["answered"] == 2
    assert by_agent[("09:00", "A2")]["answered"] == 1
    assert by_agent[("09:00", "")]["offered"] == 2  # the abandons C3, C4


def test_a_day_row_is_the_sum_of_its_half_hours() -> None:
    (day,) = service_level_report(CALLS, SPANS, SETTINGS, Granularity.DAY).rows
    assert day["interval_start"] == "2026-03-02T00:00:00+08:00"
    assert (day["offered"], day["answered"], day["short_abandoned"]) == (6, 4, 1)
    assert day["answer_rate"] == 80.0  # 4 / (6 - 1)


def test_explain_lists_the_calls_behind_each_input() -> None:
    (tally,) = tally_calls(
        CALLS, SPANS, SETTINGS, HALF, Dimension.TENANT, only=(at("09:00:00"), "")
    ).values()
    assert isinstance(tally, CallTally)
    assert tally.contributors is not None
    assert tally.contributors["answered_within_t"] == ["C1", "C5"]
    assert tally.contributors["offered"] == ["C1", "C2", "C3", "C4", "C5"]
    assert tally.contributors["short_abandoned"] == ["C3"]
    assert tally.contributors["longest_wait_s"] == ["C4"]
    assert tally.contributors["wrap_s"] == ["C1", "C2", "C5"]


def test_seat_time_splits_states_at_the_boundary() -> None:
    table = seat_time_report(CALLS, SPANS, SETTINGS, HALF, UNTIL)
    rows = _rows(table)
    a1 = rows[("09:00", "A1")]
    # A1 09:00-09:30: ready 10 + 240 + 1355 = 1605; talk 120 + 20 + 5 = 145 (C5 cut at 09:30);
    # ACW 30 + 20 = 50; 1605 + 145 + 50 = 1800 signed in.
    assert (a1["ready"], a1["talk"], a1["wrap"], a1["signed_in"]) == (1605, 145, 50, 1800)
    assert a1["handled"] == 3  # C1, C2's second leg, C5
    assert a1["seat_calls_over_15s"] == 2  # C1 120 s, C2 leg 20 s; C5 10 s is not
    assert a1["occupancy"] == pytest.approx(100 * 195 / 1800, abs=1e-4)  # 10.8333
    assert a1["work_efficiency"] == 4.0  # 2 calls × 3600 / 1800 s
    a1b = rows[("09:30", "A1")]
    # 09:30-09:45: talk 5 (rest of C5), ACW 10, ready 885; signed out after.
    assert (a1b["talk"], a1b["wrap"], a1b["ready"], a1b["signed_in"]) == (5, 10, 885, 900)
    assert a1b["handled"] == 0
    a2 = rows[("09:00", "A2")]
    # A2 09:00-09:30: ready 340, talk 60, not ready (meeting) 800, break 600 (09:20-09:30).
    assert (a2["ready"], a2["talk"], a2["not_ready"], a2["break"]) == (340, 60, 800, 600)
    assert a2["not_ready:meeting"] == 800
    assert a2["occupancy"] == 15.0  # 60 / (60 + 340)
    a2b = rows[("09:30", "A2")]
    # 09:30-10:00: break 620 (to 09:40:20), talk 40 + 60, ready 540 + 540 (open to 10:00).
    assert (a2b["break"], a2b["talk"], a2b["ready"], a2b["signed_in"]) == (620, 100, 1080, 1800)
    assert (a2b["handled"], a2b["seat_outbound"]) == (1, 1)  # C6; C7 placed 09:50
    # Average agents on line: 09:00 (1800 + 1800) / 1800 = 2; 09:30 (900 + 1800) / 1800 = 1.5.
    assert rows[("09:00", "*")]["online_actual"] == 2.0
    assert rows[("09:30", "*")]["online_actual"] == 1.5
    assert rows[("08:30", "*")]["online_actual"] == pytest.approx(300 / 1800, abs=1e-4)


def test_seat_time_explains_with_clipped_state_pieces() -> None:
    pieces = span_pieces(SPANS, SETTINGS, HALF, UNTIL, (at("09:30:00"), "A2"))
    breaks = [p for p in pieces if p.state.value == "break"]
    assert [(p.started_at.strftime("%H:%M:%S"), p.seconds) for p in breaks] == [("09:30:00", 620)]
    assert sum(p.seconds for p in pieces) == 1800


def test_daily_outbound_quota_appears_from_day_granularity() -> None:
    settings = KpiSettings(outbound_daily_quota=40, required_headcount=3)
    day = seat_time_report(CALLS, SPANS, settings, Granularity.DAY, UNTIL)
    a2 = next(r for r in day.rows if r["agent_no"] == "A2")
    assert (a2["seat_outbound"], a2["outbound_quota"]) == (1, 40)
    total = next(r for r in day.rows if r["agent_no"] == "*")
    assert total["online_required"] == 3
    half = seat_time_report(CALLS, SPANS, settings, HALF, UNTIL)
    assert all(r.get("outbound_quota") is None for r in half.rows)
    assert tally_seats(CALLS, SPANS, settings, Granularity.DAY, UNTIL)


def test_seat_detail_has_one_row_per_call_with_its_outcome() -> None:
    table = seat_detail_report(CALLS, SETTINGS, "acme")
    by_id = {r["call_id"]: r for r in table.rows}
    assert [r["call_id"] for r in table.rows] == ["C1", "C2", "C3", "C4", "C5", "C6", "C7"]
    assert by_id["C2"]["agents"] == "A2→A1"
    assert (by_id["C2"]["disposition"], by_id["C2"]["transfers"]) == ("transferred", 1)
    assert (by_id["C2"]["wait_s"], by_id["C2"]["talk_s"]) == (40.0, 80.0)
    assert by_id["C3"]["disposition"] == "short_abandoned"
    assert by_id["C4"]["disposition"] == "abandoned"
    assert by_id["C7"]["disposition"] == "outbound"
    assert by_id["C1"]["answered_at"] == "2026-03-02T09:00:10+08:00"
    assert by_id["C1"]["recording"] == "/api/v1/recordings?tenant=acme&call_id=C1"
    assert by_id["C4"]["recording"] is None
    only_a1 = seat_detail_report(CALLS, SETTINGS, "acme", agent_no="A1")
    assert [r["call_id"] for r in only_a1.rows] == ["C1", "C2", "C5"]


def test_call_attributes_by_region_carrier_and_repeat_caller() -> None:
    table = call_attributes_report(CALLS, SETTINGS, known_callers={"01058001234"})
    rows = {(r["attribute"], r["value"]): r for r in table.rows}
    # 13800138000 (C1, C4, C5) is a Beijing China Mobile number; 18912345678 (C3, C6) is
    # Changzhou China Telecom; 01058001234 (C2) a Beijing fixed line.
    assert rows[("region", "北京市")]["offered"] == 4
    assert rows[("region", "江苏省常州市")]["offered"] == 2
    assert rows[("carrier", "中国移动")]["offered"] == 3
    assert rows[("carrier", "中国电信")]["offered"] == 2
    assert rows[("carrier", "固话")]["offered"] == 1
    # new: first sight of 13800138000 (C1) and 18912345678 (C3); C2's caller was known before.
    assert rows[("caller_type", "new")]["offered"] == 2
    assert rows[("caller_type", "repeat")]["offered"] == 4
    assert rows[("hour", "09")]["offered"] == 6
    assert rows[("access_number", "4001234567")]["answer_rate"] == 80.0  # 4 / (6 - 1)
    assert ("region", "未知") not in rows  # C7 is outbound and not counted


def test_region_and_carrier_for_fixed_lines_abroad_and_extensions() -> None:
    numbers = PrefixCache()
    assert numbers.region_and_carrier("075512345678") == ("广东省深圳市", "固话")
    assert numbers.region_and_carrier("+442083661177") == ("英国", "固话")  # full parse path
    assert numbers.region_and_carrier("8001") == ("未知", "未知")  # an extension
    assert numbers.region_and_carrier(None) == ("未知", "未知")
    # Two mobiles sharing the first 7 digits share one lookup.
    assert numbers.region_and_carrier("13800138000") == numbers.region_and_carrier("13800130000")


def test_operations_report_judges_the_month_against_targets_and_lists_misses() -> None:
    settings = KpiSettings(
        outbound_daily_quota=40,
        targets=(("aht", 100.0), ("answer_rate", 80.0), ("service_level", 80.0)),
    )
    rows = {
        (r["scope"], r["kpi"]): r for r in operations_report(CALLS, SPANS, settings, UNTIL).rows
    }
    # 接通率 4 / (6 - 1) = 80 % meets 80; 及时应答率 3 / 5 (C1, C5, C6) = 60 % misses 80.
    assert (rows[("tenant", "answer_rate")]["value"], rows[("tenant", "answer_rate")]["met"]) == (
        80.0,
        "yes",
    )
    assert (
        rows[("tenant", "service_level")]["value"],
        rows[("tenant", "service_level")]["met"],
    ) == (60.0, "no")
    # AHT (210 + 40 talk + 60 ACW) / 4 = 77.5 s, at most 100: met.
    assert (rows[("tenant", "aht")]["value"], rows[("tenant", "aht")]["met"]) == (77.5, "yes")
    # 工作效率 defaults to the contract's 18 per hour: 4 legs over 15 s in 6,600 s signed in.
    assert rows[("tenant", "work_efficiency")]["value"] == pytest.approx(4 * 3600 / 6600, abs=1e-4)
    assert rows[("tenant", "work_efficiency")]["target"] == 18.0
    # Each agent's misses: A1 2 legs in 3,000 s = 2.4/h; A2 2 legs in 3,600 s = 2.0/h; and
    # 日呼出量 A1 0, A2 1 on their one day against 40.
    assert rows[("A1", "work_efficiency")]["value"] == 2.4
    assert rows[("A2", "work_efficiency")]["value"] == 2.0
    assert (rows[("A2", "daily_outbound")]["value"], rows[("A2", "daily_outbound")]["met"]) == (
        1.0,
        "no",
    )
    assert rows[("tenant", "daily_outbound")]["value"] == 0.5  # 1 call over 2 agent-days


def test_mobile_prefix_cache_answers_as_a_full_lookup_would() -> None:
    """The 7-digit mobile shortcut gives what parsing each number gives, valid or not."""
    import random

    from ccbridge.domain.calls.numbers import to_e164
    from ccbridge.domain.reports.call_attributes import UNKNOWN, _lookup

    rnd = random.Random(7)
    cached = PrefixCache()
    for _ in range(400):
        raw = f"1{rnd.choice('0123456789')}{rnd.randint(0, 999_999_999):09d}"
        e164 = to_e164(raw)
        expected = _lookup(e164) if e164 else (UNKNOWN, UNKNOWN)
        assert cached.region_and_carrier(raw) == expected, raw
    assert cached.region_and_carrier("13800138000")[1] == "中国移动"
    assert cached.region_and_carrier("10000000000") == (UNKNOWN, UNKNOWN)  # not a valid mobile
