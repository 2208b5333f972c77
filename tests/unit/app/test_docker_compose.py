"""docker/compose.yaml lines up: every path, port and credential agrees on both sides.

No Docker engine runs here, so the compose file, the Dockerfile and the Asterisk files in
docker/asterisk-etc/ are read as Docker and Asterisk would read them, and each pair that must
agree is compared: ccbridge's settings against the Asterisk container's mounts, the dialplan's
FastAGI address, manager.conf's user and ACL, rtp.conf against the published ports, and so on.
The Asterisk configuration is read through the Asterisk container's mounts by the fake PBX's
config reader, so "Asterisk includes the file ccbridge writes" is tested, not assumed.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from ccbridge.asterisk.config.queues import GENERATED_FILE, QueueDefinition, render_queues
from ccbridge.env_example import render_env_example
from ccbridge.settings import Mode, Settings
from ccbridge.testing.queue_config_reader import ConfigSection, read_queue_specs, read_sections

REPO = Path(__file__).resolve().parents[3]
DOCKER = REPO / "docker"
COMPOSE = DOCKER / "compose.yaml"


@cache
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return data


def service(name: str) -> dict[str, Any]:
    svc: dict[str, Any] = compose()["services"][name]
    return svc


def env(name: str) -> dict[str, str]:
    return {k: str(v) for k, v in service(name).get("environment", {}).items()}


def compose_default(value: str) -> str:
    """``${VAR:-default}`` → default (what runs without a .env); plain values as they are."""
    match = re.fullmatch(r"\$\{\w+:-(.*)\}", value)
    return match.group(1) if match else value


def mounts(name: str) -> list[tuple[str, str, bool]]:
    """``(source, target, read_only)`` of each short-syntax volume of a service."""
    out = []
    for spec in service(name).get("volumes", []):
        source, target, *mode = spec.split(":")
        out.append((source, target, mode == ["ro"]))
    return out


def named_volume_at(name: str, target: str) -> tuple[str, bool]:
    """The named volume a service mounts at ``target`` (and whether read-only)."""
    for source, tgt, ro in mounts(name):
        if tgt == target and not source.startswith((".", "/")):
            return source, ro
    raise AssertionError(f"{name} mounts no named volume at {target}")


def mount_of(name: str, volume: str) -> tuple[str, bool]:
    for source, target, ro in mounts(name):
        if source == volume:
            return target, ro
    raise AssertionError(f"{name} does not mount volume {volume}")


def published(name: str) -> list[str]:
    return [str(p) for p in service(name).get("ports", [])]


def ipv4(name: str) -> str:
    address: str = service(name)["networks"]["pbx"]["ipv4_address"]
    return address


def asterisk_host_path(path: PurePosixPath | Path, root: Path) -> Path:
    """Where a file the Asterisk container opens lives here (bind mounts only; named volumes
    are mapped into ``root``)."""
    text = str(path)
    best: tuple[str, Path] | None = None
    for source, target, _ro in mounts("asterisk"):
        if text == target or text.startswith(target.rstrip("/") + "/"):
            host = (DOCKER / source) if source.startswith(".") else root / source
            if best is None or len(target) > len(best[0]):
                best = (target, host)
    if best is None:
        return root / "unmounted" / text.lstrip("/")
    target, host = best
    return host / text[len(target) :].lstrip("/")


def asterisk_sections(filename: str, root: Path) -> list[ConfigSection]:
    etc = asterisk_host_path(PurePosixPath("/etc/asterisk"), root)
    return read_sections(
        etc / filename, etc, resolve=lambda p: asterisk_host_path(PurePosixPath(p), root)
    )


def merged(sections: list[ConfigSection], name: str) -> ConfigSection:
    """A section with every ``(+)`` addition applied, as Asterisk merges them."""
    found = [s for s in sections if s.name == name]
    assert found, f"no [{name}] section"
    out = ConfigSection(name, found[0].template, found[0].parents)
    for s in found:
        out.options += s.options
    return out


# --------------------------------------------------------------------------- files and images


def test_every_local_file_compose_names_exists() -> None:
    build = service("ccbridge")["build"]
    context = (DOCKER / build["context"]).resolve()
    assert (context / build["dockerfile"]).is_file()
    for name in compose()["services"]:
        for source, _target, _ro in mounts(name):
            if source.startswith("."):
                assert (DOCKER / source).exists(), f"{name}: {source} does not exist"
            else:
                assert source in compose()["volumes"], f"{name}: undeclared volume {source}"


def test_images_are_pinned_to_exact_versions() -> None:
    asterisk = service("asterisk")["image"]
    assert re.fullmatch(r"andrius/asterisk:22\.\d+\.\d+_debian-\w+", asterisk), asterisk
    assert re.fullmatch(r"postgres:\d+\.\d+-\w+", service("postgres")["image"])


def test_the_image_runs_the_tests_python_from_the_lock_as_a_non_root_user() -> None:
    dockerfile = (DOCKER / "Dockerfile").read_text(encoding="utf-8")
    tests_python = (REPO / ".python-version").read_text().strip()
    base = re.search(r"^FROM python:(\S+)-slim", dockerfile, re.M)
    assert base is not None
    assert base.group(1) == tests_python
    assert "pip install --require-hashes --no-deps -r requirements.lock" in dockerfile
    users = re.findall(r"^USER (\S+)", dockerfile, re.M)
    assert users
    assert users[-1] not in ("root", "0")
    health = re.search(r"^HEALTHCHECK .*\n\s*CMD (.*)$", dockerfile, re.M)
    port = env("ccbridge")["CCBRIDGE_API__PORT"]
    assert health is not None
    assert f"127.0.0.1:{port}/readyz" in health.group(1)


def test_the_lock_pins_every_runtime_dependency_with_hashes() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    lock = (REPO / "requirements.lock").read_text(encoding="utf-8")
    pinned = {
        m.group(1).lower().replace("_", "-")
        for m in re.finditer(r"^([A-Za-z0-9_.-]+)==\S+ \\\n\s+--hash=sha256:", lock, re.M)
    }
    for requirement in project["dependencies"]:
        name = re.match(r"[A-Za-z0-9_.-]+", requirement)
        assert name is not None
        assert name.group(0).lower().replace("_", "-") in pinned, f"{requirement} not locked"
    assert "--extra-index-url" not in lock
    assert "file://" not in lock


def test_every_ccbridge_variable_in_compose_is_a_setting() -> None:
    known = set(re.findall(r"^#? ?(CCBRIDGE_\w+)=", render_env_example(), re.M))
    for key in env("ccbridge"):
        assert key in known, f"{key} is not a ccbridge setting"


# --------------------------------------------------------------------------- shared paths


def test_shared_volumes_sit_at_the_same_path_in_both_containers() -> None:
    ours = {source: target for source, target, _ in mounts("ccbridge") if source[0] not in "./"}
    theirs = {source: target for source, target, _ in mounts("asterisk") if source[0] not in "./"}
    shared = set(ours) & set(theirs)
    assert shared == {"asterisk-generated", "recordings", "prompts", "asterisk-logs"}
    for volume in shared:
        assert ours[volume] == theirs[volume], volume


def test_ccbridge_reads_the_queue_log_asterisk_writes() -> None:
    path = env("ccbridge")["CCBRIDGE_PBX_RECORDS__QUEUE_LOG_PATH"]
    volume, ro = named_volume_at("ccbridge", str(Path(path).parent))
    assert ro  # ccbridge only reads the PBX's records
    target, asterisk_ro = mount_of("asterisk", volume)
    assert target == str(Path(path).parent)
    assert not asterisk_ro  # Asterisk writes its queue log there


def test_recordings_mixmonitor_writes_where_ccbridge_reads() -> None:
    directory = env("ccbridge")["CCBRIDGE_RECORDINGS__DIR"]
    volume, ro = named_volume_at("ccbridge", directory)
    assert not ro  # ccbridge deletes recordings past retention
    target, asterisk_ro = mount_of("asterisk", volume)
    assert target == directory  # MixMonitor gets <dir>/<tenant>/… as an absolute path
    assert not asterisk_ro


def test_prompts_are_stored_and_played_from_the_same_files() -> None:
    settings = env("ccbridge")
    volume, ro = named_volume_at("ccbridge", settings["CCBRIDGE_IVR__PROMPTS_DIR"])
    assert not ro
    target, _ = mount_of("asterisk", volume)
    assert target == settings["CCBRIDGE_IVR__ASTERISK_PROMPTS_DIR"]


def test_asterisk_reads_the_queues_ccbridge_writes(tmp_path: Path) -> None:
    """Render a queue into the generated volume; the PBX, reading queues.conf through its
    mounts, has it (and inherits ccbridge's template from the repository snippet)."""
    generated = env("ccbridge")["CCBRIDGE_ASTERISK_GENERATED_DIR"]
    volume, ro = named_volume_at("ccbridge", generated)
    assert not ro
    assert mount_of("asterisk", volume)[0] == generated
    (tmp_path / volume).mkdir()
    (tmp_path / volume / GENERATED_FILE).write_text(
        render_queues([QueueDefinition("t9-sales", strategy="ringall")])
    )
    etc = asterisk_host_path(PurePosixPath("/etc/asterisk"), tmp_path)
    specs = read_queue_specs(
        etc / "queues.conf",
        etc,
        resolve=lambda p: asterisk_host_path(PurePosixPath(p), tmp_path),
    )
    assert [(s.name, s.strategy) for s in specs] == [("t9-sales", "ringall")]
    general = merged(asterisk_sections("queues.conf", tmp_path), "general")
    assert general.get("persistentmembers") == ["no"]


# --------------------------------------------------------------------------- AMI


def test_ami_user_port_and_acl_agree_with_ccbridge(tmp_path: Path) -> None:
    settings = env("ccbridge")
    assert settings["CCBRIDGE_AMI__HOST"] == "asterisk"  # the service name
    sections = asterisk_sections("manager.conf", tmp_path)
    general = merged(sections, "general")
    assert general.get("port") == [settings["CCBRIDGE_AMI__PORT"]]
    assert general.get("timestampevents") == ["yes"]
    assert general.get("channelvars") == [
        "CCB_TENANT,CCB_DID,CCB_QUEUE,CCB_STICKY_AGENT,CCB_STICKY_INTERFACE,CCB_STICKY_QUEUE,"
        "CCB_STICKY_FILE,MIXMONITOR_FILENAME"
    ]  # from the snippet
    user = merged(sections, settings["CCBRIDGE_AMI__USERNAME"])
    assert user.get("read") == ["call,agent,system"]
    secret = user.get("secret")[-1]  # the last one wins in manager.c
    assert secret == compose_default(settings["CCBRIDGE_AMI__SECRET"])
    permitted = [
        ipaddress.ip_network(p.replace("/255.255.255.255", "/32")) for p in user.get("permit")
    ]
    assert any(ipaddress.ip_address(ipv4("ccbridge")) in net for net in permitted)
    assert not any(p.startswith(settings["CCBRIDGE_AMI__PORT"]) for p in published("asterisk"))


def test_prod_mode_refuses_the_shipped_ami_secret() -> None:
    """The secret in manager.conf is a placeholder: ccbridge will not start on it in prod."""
    shipped = compose_default(env("ccbridge")["CCBRIDGE_AMI__SECRET"])
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        mode=Mode.PROD,
        ami={"host": "asterisk", "secret": shipped},
    )
    assert any("CCBRIDGE_AMI__SECRET" in p for p in settings.check_production_secrets())


# --------------------------------------------------------------------------- FastAGI


def test_fastagi_is_reachable_from_asterisk_only(tmp_path: Path) -> None:
    settings = env("ccbridge")
    port = settings["CCBRIDGE_AGI__PORT"]
    assert env("asterisk")["CCBRIDGE_FASTAGI"] == f"ccbridge:{port}"
    assert port in [str(p) for p in service("ccbridge")["expose"]]
    for name in compose()["services"]:
        assert not any(p.split(":")[0] == port for p in published(name)), name
    peers = yaml.safe_load(settings["CCBRIDGE_AGI__ALLOWED_PEERS"])
    assert [ipaddress.ip_network(p) for p in peers] == [
        ipaddress.ip_network(f"{ipv4('asterisk')}/32")
    ]
    subnet = ipaddress.ip_network(compose()["networks"]["pbx"]["ipam"]["config"][0]["subnet"])
    assert ipaddress.ip_address(ipv4("asterisk")) in subnet
    assert ipaddress.ip_address(ipv4("ccbridge")) in subnet
    sections = asterisk_sections("extensions.conf", tmp_path)
    inbound = " ".join(merged(sections, "ccbridge-inbound").get("same"))
    assert "Gosub(ccbridge-fastagi,s,1(inbound))" in inbound
    assert "AGI(${CCB_FASTAGI_URL}/inbound)" in inbound
    nodes = " ".join(merged(sections, "ccbridge-fastagi").get("same"))
    assert "Set(LOCAL(nodes)=${ENV(CCBRIDGE_FASTAGI)})" in nodes
    assert "Set(CCB_FASTAGI_URL=agi://${CCB_FASTAGI})" in nodes


# --------------------------------------------------------------------------- published ports


def test_the_ftp_passive_range_is_published_exactly() -> None:
    settings = env("ccbridge")
    passive = settings["CCBRIDGE_RECORDINGS__FTP_PASSIVE_PORTS"]
    assert f"{passive}:{passive}" in published("ccbridge")
    ftp = settings["CCBRIDGE_RECORDINGS__FTP_PORT"]
    assert f"{ftp}:{ftp}" in published("ccbridge")
    api = settings["CCBRIDGE_API__PORT"]
    assert f"{api}:{api}" in published("ccbridge")


def test_rtp_and_sip_ports_match_the_published_ones(tmp_path: Path) -> None:
    rtp = merged(asterisk_sections("rtp.conf", tmp_path), "general")
    low, high = int(rtp.get("rtpstart")[0]), int(rtp.get("rtpend")[0])
    assert f"{low}-{high}:{low}-{high}/udp" in published("asterisk")
    transport = merged(asterisk_sections("pjsip.conf", tmp_path), "transport-udp")
    sip_port = transport.get("bind")[0].rsplit(":", 1)[1]
    assert f"{sip_port}:{sip_port}/udp" in published("asterisk")


def test_the_calendar_files_install_md_imports_in_the_container_are_in_the_image() -> None:
    dockerfile = (DOCKER / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^COPY docs/calendars \./docs/calendars$", dockerfile, re.M)
    workdir = re.search(r"^WORKDIR (\S+)", dockerfile, re.M)
    assert workdir is not None
    install = (REPO / "docs" / "install.md").read_text(encoding="utf-8")
    imported = re.findall(rf"calendar import {workdir.group(1)}/(docs/calendars/\S+)", install)
    assert imported
    for relative in imported:
        assert (REPO / relative).is_file(), relative


# --------------------------------------------------------------------------- the `ha` profile


def test_the_ha_profile_adds_a_second_node_like_the_first() -> None:
    """The second node differs from the first only in what a second node must change."""
    first, second = service("ccbridge"), service("ccbridge-b")
    assert second["profiles"] == ["ha"]
    assert "profiles" not in first  # the single node still starts without a profile
    assert second["image"] == first["image"]
    assert second["build"] == first["build"]
    assert second["stop_grace_period"] == first["stop_grace_period"]
    assert mounts("ccbridge-b") == mounts("ccbridge")
    assert second["expose"] == first["expose"]
    assert second["depends_on"] == first["depends_on"]
    a, b = env("ccbridge"), env("ccbridge-b")
    differing = {k for k in a.keys() | b.keys() if a.get(k) != b.get(k)}
    assert differing == {
        "CCBRIDGE_HA__ENABLED",
        "CCBRIDGE_HA__NODE_ID",
        "CCBRIDGE_HA__ADVERTISE_URL",
        "CCBRIDGE_RECORDINGS__FTP_ENABLED",
    }
    # Each node publishes the address the other forwards owner-only requests to: its
    # compose service name and the API's container port (ADR 0031).
    port = a["CCBRIDGE_API__PORT"]
    assert a["CCBRIDGE_HA__ADVERTISE_URL"] == f"http://ccbridge:{port}"
    assert b["CCBRIDGE_HA__ADVERTISE_URL"] == f"http://ccbridge-b:{port}"
    assert b["CCBRIDGE_HA__ENABLED"] == "true"
    assert a["CCBRIDGE_HA__ENABLED"] == "${CCBRIDGE_HA__ENABLED:-false}"
    assert a["CCBRIDGE_HA__NODE_ID"] != b["CCBRIDGE_HA__NODE_ID"]
    assert b["CCBRIDGE_RECORDINGS__FTP_ENABLED"] == "false"  # FTP's ports stay on the first
    for key in b:
        assert key in set(re.findall(r"^#? ?(CCBRIDGE_\w+)=", render_env_example(), re.M))


def test_the_second_node_runs_as_an_ha_node_on_postgresql(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Read as ccbridge reads its environment, both nodes pass the HA start checks."""

    def settings_of(values: dict[str, str]) -> Settings:
        for key, raw in values.items():
            monkeypatch.setenv(key, compose_default(raw))
        return Settings(_env_file=None)  # type: ignore[call-arg]

    second = settings_of(env("ccbridge-b"))
    assert second.ha.enabled
    assert second.check_high_availability() == []
    first = settings_of({**env("ccbridge"), "CCBRIDGE_HA__ENABLED": "true"})
    assert first.check_high_availability() == []
    assert first.ha.node_name() != second.ha.node_name()


def test_the_second_node_is_on_the_pbx_network_with_its_own_ports(tmp_path: Path) -> None:
    assert published("ccbridge-b") == ["8001:8000"]
    taken = {
        p.split(":")[0]
        for name in compose()["services"]
        if name != "ccbridge-b"
        for p in published(name)
    }
    assert "8001" not in taken
    assert ipv4("ccbridge-b") != ipv4("ccbridge")
    subnet = ipaddress.ip_network(compose()["networks"]["pbx"]["ipam"]["config"][0]["subnet"])
    assert ipaddress.ip_address(ipv4("ccbridge-b")) in subnet
    port = env("ccbridge-b")["CCBRIDGE_AGI__PORT"]
    assert env("asterisk")["CCBRIDGE_FASTAGI_BACKUP"] == f"ccbridge-b:{port}"
    # The shipped dialplan asks ccbridge-b when ccbridge refuses or dies mid-script.
    sections = asterisk_sections("extensions.conf", tmp_path)
    nodes = " ".join(merged(sections, "ccbridge-fastagi").get("same"))
    assert "${ENV(CCBRIDGE_FASTAGI_BACKUP)}" in nodes
