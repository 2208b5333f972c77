"""The fake PBX reads queues.conf like Asterisk: includes from its folder, templates, members."""

from __future__ import annotations

from pathlib import Path

import pytest

from ccbridge.asterisk.config.queues import QueueDefinition, render_queues
from ccbridge.testing.fake_pbx import FakeAsterisk
from ccbridge.testing.queue_config_reader import ConfigIncludeError, read_queue_specs

REPO = Path(__file__).resolve().parents[3]


def _etc(tmp_path: Path, generated: str | None) -> Path:
    """A PBX config folder with the repository's queues snippet and, maybe, a generated file."""
    etc = tmp_path / "etc"
    (etc / "generated").mkdir(parents=True)
    (etc / "queues-ccbridge.conf").write_text(
        (REPO / "asterisk" / "queues-ccbridge.conf").read_text()
    )
    (etc / "queues.conf").write_text(
        "[general]\npersistentmembers = no\n\n"
        "[admin-own]\nstrategy = ringall\nmember => PJSIP/100,2,100 Front desk\n\n"
        "#include queues-ccbridge.conf\n"
        f"#tryinclude {etc / 'generated' / 'queues.conf'}\n"
    )
    if generated is not None:
        (etc / "generated" / "queues.conf").write_text(generated)
    return etc / "queues.conf"


def test_generated_queues_exist_through_the_documented_includes(tmp_path: Path) -> None:
    text = render_queues([QueueDefinition("t1-sales", strategy="ringall"), QueueDefinition("t1-x")])
    specs = {s.name: s for s in read_queue_specs(_etc(tmp_path, text))}
    assert set(specs) == {"admin-own", "t1-sales", "t1-x"}  # no template, no [general]
    assert specs["t1-sales"].strategy == "ringall"
    assert specs["t1-x"].strategy == "rrmemory"  # from [ccbridge-queue-defaults](!)
    member = specs["admin-own"].members[0]
    assert (member.interface, member.penalty, member.member_name) == (
        "PJSIP/100",
        2,
        "100 Front desk",
    )


def test_a_missing_tryinclude_means_no_queue_and_a_missing_include_fails(tmp_path: Path) -> None:
    conf = _etc(tmp_path, None)
    assert [s.name for s in read_queue_specs(conf)] == ["admin-own"]
    conf.write_text("#include nowhere.conf\n")
    with pytest.raises(ConfigIncludeError):
        read_queue_specs(conf)


async def test_queue_reload_adds_and_drops_generated_queues(tmp_path: Path) -> None:
    conf = _etc(tmp_path, render_queues([QueueDefinition("t1-sales")]))
    generated = conf.parent / "generated" / "queues.conf"
    pbx = FakeAsterisk(queues=[], agi_url=None, queues_conf=conf)
    assert set(pbx.model.queues) == {"admin-own", "t1-sales"}
    generated.write_text(render_queues([QueueDefinition("t1-support")]))
    assert "t1-support" not in pbx.model.queues  # not before a reload
    pbx.model.reload_config()
    assert set(pbx.model.queues) == {"admin-own", "t1-support"}
