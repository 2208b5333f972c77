"""The dialplan files ccbridge ships parse the way Asterisk reads them: no orphan extensions."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ccbridge.asterisk.agi.server import DONE_VARIABLE
from ccbridge.asterisk.callback_agi import SCRIPT as CALLBACK_SCRIPT
from ccbridge.asterisk.inbound_route import SCRIPT
from ccbridge.asterisk.ivr_return import SCRIPT as IVR_RETURN_SCRIPT

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


def test_every_fastagi_script_is_asked_through_the_node_failover() -> None:
    lines = (ROOT / "asterisk" / "extensions-ccbridge.conf").read_text(encoding="utf-8")
    text = "\n".join(x for x in lines.splitlines() if not x.lstrip().startswith(";"))
    # Each AGI() runs in its caller's extension (agi_extension stays the dialled number) on
    # the node [ccbridge-fastagi] picked, and goes back to it until a node finished.
    scripts = [SCRIPT, CALLBACK_SCRIPT, IVR_RETURN_SCRIPT]
    assert re.findall(r"AGI\(([^)]*)\)", text) == [f"${{CCB_FASTAGI_URL}}/{s}" for s in scripts]
    assert re.findall(r"Gosub\(ccbridge-fastagi,s,1\(([-a-z]+)\)\)", text) == scripts
    for script in scripts:
        step = re.search(
            r"Set\(CCB_FASTAGI_NODE=0\)\n.*\((\w+)\),Gosub\(ccbridge-fastagi,s,1\("
            + script
            + r"\)\)\n.*GotoIf\(\$\[\"\$\{CCB_FASTAGI_URL\}\" = \"\"\]\?\w+\)\n"
            + r".*AGI\(\$\{CCB_FASTAGI_URL\}/"
            + script
            + r"\)\n.*Goto\((\w+)\)\n",
            text,
        )
        assert step is not None, script
        assert step[1] == step[2], script  # back to the Gosub for the next node


def test_the_failover_reads_the_mark_the_server_sets() -> None:
    # A node that died mid-script leaves AGISTATUS=SUCCESS: only the mark tells it finished.
    section = _section("ccbridge-fastagi")
    assert f"Set({DONE_VARIABLE}=)" in section
    assert f'GotoIf($["${{{DONE_VARIABLE}}}" = "${{ARG1}}"]?done)' in section


def _section(name: str) -> str:
    text = (ROOT / "asterisk" / "extensions-ccbridge.conf").read_text(encoding="utf-8")
    body = text.split(f"\n[{name}]\n", 1)[1]
    return body.split("\n[", 1)[0]
