"""The dialplan files ccbridge ships parse the way Asterisk reads them: no orphan extensions."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[3]
DIALPLANS = sorted(
    p
    for p in [*ROOT.glob("asterisk/**/*.conf"), *ROOT.glob("docker/asterisk-etc/*.conf")]
    if "exten =>" in p.read_text(encoding="utf-8")
)


@pytest.mark.parametrize("path", DIALPLANS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_extension_sits_in_a_context(path: Path) -> None:
    context = None
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        stripped = line.split(";", 1)[0].strip()
        if stripped.startswith("[") and "]" in stripped:
            context = stripped
        elif stripped.startswith(("exten", "same")):
            assert context is not None, f"{path.name}:{number}: extension before any [context]"


def test_the_inbound_context_is_shipped() -> None:
    text = (ROOT / "asterisk" / "extensions-ccbridge.conf").read_text(encoding="utf-8")
    assert "\n[ccbridge-inbound]\n" in text


@pytest.mark.parametrize("path", DIALPLANS, ids=lambda p: str(p.relative_to(ROOT)))
def test_filter_character_sets_keep_the_dash(path: Path) -> None:
    # Asterisk's FILTER() reads "x-y" as a range, so a trailing "_-" is the range "_".."_" and
    # drops every dash: queue "t1-sales" became "t1sales" on a real PBX. A dash must lead.
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        for allowed in re.findall(r"FILTER\(([^,()]*),", line):
            assert not allowed.endswith("-"), f"{path.name}:{number}: FILTER({allowed},…)"


def test_every_fastagi_address_comes_from_the_setting() -> None:
    text = (ROOT / "asterisk" / "extensions-ccbridge.conf").read_text(encoding="utf-8")
    assert re.findall(r"AGI\(agi://([^/]+)/", text) == ["${CCB_FASTAGI}"] * 3
