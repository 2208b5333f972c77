"""The fake PBX's durable records: a queue log and a CDR file in the form Asterisk 22 writes.

Formats follow ``/work/shared/asterisk-captures/logs`` (``queue_log`` and cdr_csv's
``Master.csv``). The two ``CCB*`` queue-log lines are the ones ccbridge's dialplan adds with
``QueueLog()`` (asterisk/extensions-ccbridge.conf), so the records name the tenant, the DID and
the Linkedid like a real PBX configured for ccbridge does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

QUEUE_LOG = "queue_log"
CDR_CSV = Path("cdr-csv") / "Master.csv"


@dataclass(frozen=True, slots=True)
class CdrLine:
    """One cdr_csv row (the caller's leg), the columns in Asterisk's order."""

    src: str
    dst: str
    dcontext: str
    clid: str
    channel: str
    dstchannel: str
    lastapp: str
    lastdata: str
    start: float
    answer: float | None
    end: float
    disposition: str
    uniqueid: str
    accountcode: str = ""
    userfield: str = ""


def _cdr_time(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(int(epoch), UTC).strftime("%Y-%m-%d %H:%M:%S")


class PbxRecordFiles:
    """Append queue-log lines and CDR rows to files under one directory, as Asterisk does."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.queue_log = directory / QUEUE_LOG
        self.cdr = directory / CDR_CSV
        self.cdr.parent.mkdir(parents=True, exist_ok=True)
        self.queue_log.touch()
        self.cdr.touch()

    def queue_event(
        self, at: float, callid: str, queue: str, agent: str, event: str, *data: str
    ) -> None:
        """``time|callid|queue|agent|event|data1|data2…`` (``NONE`` where Asterisk puts it)."""
        fields = [str(int(at)), callid or "NONE", queue or "NONE", agent or "NONE", event, *data]
        if not data:
            fields.append("")
        with self.queue_log.open("a", encoding="utf-8") as out:
            out.write("|".join(fields) + "\n")

    def cdr_row(self, row: CdrLine) -> None:
        """One Master.csv row: text quoted, numbers and an empty answer time bare."""
        answer = _cdr_time(row.answer)
        billsec = 0 if row.answer is None else int(row.end) - int(row.answer)
        cells = [
            *(
                _quoted(v)
                for v in (
                    row.accountcode,
                    row.src,
                    row.dst,
                    row.dcontext,
                    row.clid,
                    row.channel,
                    row.dstchannel,
                    row.lastapp,
                    row.lastdata,
                    _cdr_time(row.start) or "",
                )
            ),
            "" if answer is None else _quoted(answer),
            _quoted(_cdr_time(row.end) or ""),
            str(int(row.end) - int(row.start)),
            str(billsec),
            *(_quoted(v) for v in (row.disposition, "DOCUMENTATION", row.uniqueid, row.userfield)),
        ]
        with self.cdr.open("a", encoding="utf-8") as out:
            out.write(",".join(cells) + "\n")


def _quoted(value: str) -> str:
    """cdr_csv's quoting: every text cell in double quotes, inner quotes doubled."""
    return '"' + value.replace('"', '""') + '"'
