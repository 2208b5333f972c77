"""The fake PBX keeps the records a real Asterisk 22 keeps (issue 14 item 4): a queue log and a
cdr_csv ``Master.csv`` in the captured form, plus the two lines ccbridge's dialplan adds."""

from __future__ import annotations

import csv
import re
from pathlib import Path

from ccbridge.domain.calls.pbx_records import assemble_calls, parse_queue_log_line
from ccbridge.testing.call_generator import SimulatorConfig
from ccbridge.testing.fake_pbx import FakeAsterisk

LOGS = Path(__file__).parents[2] / "fixtures" / "asterisk-captures" / "logs"


def _shape(line: str) -> tuple[str, int]:
    """A queue-log line's event and field count."""
    parts = line.split("|")
    return parts[4], len(parts)


_CELL = re.compile(r'("(?:[^"]|"")*"|[^,]*)(?:,|$)')


def _quoting(line: str) -> list[bool]:
    """Which CDR columns are quoted (Asterisk leaves numbers and an empty answer bare)."""
    return [cell.startswith('"') for cell in _CELL.findall(line)][:18]


async def test_queue_log_and_cdr_take_the_captured_form(tmp_path: Path) -> None:
    config = SimulatorConfig(ring_seconds=(3.0, 3.0), poll_interval=0.001)
    async with FakeAsterisk(
        seed=2, agi_url=None, time_scale=0.001, config=config, records_dir=tmp_path
    ) as pbx:
        answered = await pbx.simulator.place_call(
            "13800138000", did="4008001234", talk_seconds=6, agent_hangs_up=False
        )
        abandoned = await pbx.simulator.place_call("13900001111", did="4008005678", abandon_after=1)
        await answered
        await abandoned
    ours = (tmp_path / "queue_log").read_text(encoding="utf-8").splitlines()
    real = (LOGS / "queue_log").read_text(encoding="utf-8").splitlines()
    real_shapes = {_shape(line) for line in real}
    asterisk_lines = [line for line in ours if "|CCB" not in line]
    assert {_shape(line)[0] for line in asterisk_lines} == {
        "ENTERQUEUE",
        "CONNECT",
        "COMPLETECALLER",
        "ABANDON",
    }
    assert {_shape(line) for line in asterisk_lines} <= real_shapes
    entries = [parse_queue_log_line(line) for line in ours]
    calls = {c.linkedid: c for c in assemble_calls(e for e in entries if e is not None)}
    got = calls[answered.linkedid]
    assert (got.tenant, got.callee, got.caller, got.queue) == (
        "t1",
        "4008001234",
        "13800138000",
        "t1-sales",
    )
    assert (got.outcome, got.agent_member) == ("answered", "1001 张伟")
    assert calls[abandoned.linkedid].outcome == "abandoned"

    cdr = (tmp_path / "cdr-csv" / "Master.csv").read_text(encoding="utf-8").splitlines()
    real_cdr = (LOGS / "cdr-Master.csv").read_text(encoding="utf-8").splitlines()
    assert len(cdr) == 2
    rows = list(csv.reader(cdr))
    assert all(len(row) == len(next(csv.reader(real_cdr))) for row in rows)
    by_uid = {row[16]: row for row in rows}
    row = by_uid[answered.linkedid]
    assert (row[1], row[2], row[5], row[7], row[14]) == (
        "13800138000",
        "4008001234",
        row[5],
        "Queue",
        "ANSWERED",
    )
    assert row[6].startswith("Local/2001@agents-")
    assert _quoting(cdr[[r[16] for r in rows].index(answered.linkedid)]) == _quoting(real_cdr[0])
    # An unanswered row leaves the answer time bare and empty, as Asterisk does.
    unanswered = next(line for line in real_cdr if '",,"' in line)
    ours_unanswered = cdr[[r[16] for r in rows].index(abandoned.linkedid)]
    assert _quoting(ours_unanswered) == _quoting(unanswered)
    assert by_uid[abandoned.linkedid][10] == ""
