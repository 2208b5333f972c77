"""FastAGI server and session behaviour against a fake Asterisk speaking Asterisk 22's format."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from structlog.testing import capture_logs

from ccbridge.asterisk.agi.errors import (
    AgiCommandError,
    AgiHangup,
    AgiInjectionError,
    AgiTimeoutError,
)
from ccbridge.asterisk.agi.result import AgiResult
from ccbridge.asterisk.agi.server import (
    DONE_VARIABLE,
    AgiRouter,
    AgiServerConfig,
    FastAgiServer,
)
from ccbridge.asterisk.agi.session import AgiSession
from tests.support.agi_client import (
    capture_commands,
    capture_environment,
    capture_replies,
    environment,
    play_asterisk,
)

Handler = Callable[[AgiSession], Awaitable[None]]


@pytest.fixture
def router() -> AgiRouter:
    return AgiRouter()


@pytest.fixture
async def server(router: AgiRouter) -> AsyncIterator[FastAgiServer]:
    srv = FastAgiServer(AgiServerConfig(port=0, command_timeout=2.0), router)
    await srv.start()
    yield srv
    await srv.stop()


async def test_replays_call_centre_capture_byte_for_byte(
    server: FastAgiServer, router: AgiRouter
) -> None:
    seen: dict[str, Any] = {}

    async def ivr_main(session: AgiSession) -> None:
        seen["script"] = session.script
        seen["channel"] = session.channel
        seen["callerid"] = (session.callerid, session.calleridname)
        seen["answer"] = await session.answer()
        seen["stream"] = await session.stream_file("nonexistent-prompt", "0123456789*#")
        seen["digits"] = await session.get_data("beep", 2000, 4)
        await session.set_variable("IVR_CHOICE", "2")
        seen["choice"] = await session.get_variable("IVR_CHOICE")
        seen["full"] = await session.get_full_variable("${CALLERID(num)}")
        seen["exec"] = await session.exec("NoOp", "ivr-node-menu")
        await session.verbose("ivr done", 1)
        seen["status"] = await session.channel_status()

    router.add_route("ivr-main", ivr_main)
    scenario = "call-centre-scenarios"
    transcript = await play_asterisk(
        server.port, capture_environment(scenario), capture_replies(scenario)
    )

    assert transcript.commands == capture_commands(scenario)
    assert transcript.closed_by_server
    assert seen["script"] == "ivr-main"
    assert seen["channel"] == "Local/sales@queue-in-0000000a;2"
    assert seen["callerid"] == ("02087654321", "Li Si")
    assert seen["answer"] == AgiResult(200, 0, None, {}, "0")
    assert seen["stream"].result == -1
    assert seen["stream"].extra == {"endpos": "0"}
    assert seen["digits"] == ""  # 200 result=-1: the prompt failed
    assert seen["choice"] == "2"
    assert seen["full"] == "02087654321"
    assert seen["exec"].result == 0
    assert seen["status"] == 6


async def test_replays_queue_call_capture(server: FastAgiServer, router: AgiRouter) -> None:
    seen: dict[str, Any] = {}

    async def smoke(session: AgiSession) -> None:
        await session.verbose("ami_smoke FastAGI says hello")
        await session.set_variable("SMOKE_AGI", "ok")
        seen["value"] = await session.get_variable("SMOKE_AGI")

    router.add_route("6000", smoke)
    scenario = "queue-call-and-sip"
    transcript = await play_asterisk(
        server.port, capture_environment(scenario), capture_replies(scenario)
    )
    assert transcript.commands == capture_commands(scenario)
    assert seen["value"] == "ok"


async def test_environment_args_query_crlf_and_gb18030(
    server: FastAgiServer, router: AgiRouter
) -> None:
    seen: dict[str, Any] = {}

    async def handler(session: AgiSession) -> None:
        seen.update(
            env=dict(session.env),
            args=session.args,
            script=session.script,
            query=session.query,
            name=session.calleridname,
            dnid=session.dnid,
            uniqueid=session.uniqueid,
            ctx=(session.context, session.extension),
        )

    router.add_route("ivr/main", handler)
    env = (
        b"agi_network: yes\r\n"
        b"agi_network_script: /ivr/main?tenant=t1&flow=7\r\n"
        b"agi_request: agi://127.0.0.1:4573/ivr/main?tenant=t1&flow=7\r\n"
        b"agi_channel: PJSIP/sipp-00000002\r\n"
        b"agi_uniqueid: 1795433130.34\r\n"
    ) + "agi_calleridname: 张三\r\n".encode("gb18030")
    env += (
        b"agi_dnid: 4000\r\n"
        b"agi_context: agi-test\r\n"
        b"agi_extension: s\r\n"
        b"agi_arg_2: second\r\n"
        b"agi_arg_1: first, with comma\r\n"
        b"agi_arg_10: tenth\r\n"
        b"agi_accountcode: \r\n"
        b"\r\n"
    )
    await play_asterisk(server.port, env, [])
    assert seen["script"] == "ivr/main"
    assert seen["query"] == {"tenant": "t1", "flow": "7"}
    assert seen["args"] == ["first, with comma", "second", "tenth"]
    assert seen["name"] == "张三"
    assert seen["dnid"] == "4000"
    assert seen["uniqueid"] == "1795433130.34"
    assert seen["ctx"] == ("agi-test", "s")
    assert seen["env"]["agi_accountcode"] == ""


def test_router_rejects_sync_handlers_and_duplicates() -> None:
    router = AgiRouter()

    def sync_handler(session: AgiSession) -> None:
        del session

    with pytest.raises(TypeError, match="async def"):
        router.add_route("x", sync_handler)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        router.add_route("x", lambda session: None)  # type: ignore[arg-type,return-value]

    async def handler(session: AgiSession) -> None:
        del session

    router.add_route("/ivr-main/", handler)
    with pytest.raises(ValueError, match="already exists"):
        router.add_route("ivr-main", handler)
    assert router.resolve("ivr-main") is handler
    assert router.resolve("/ivr-main?x=1") is handler
    assert router.resolve("other") is None


def test_router_accepts_async_callable_objects() -> None:
    class Flow:
        async def __call__(self, session: AgiSession) -> None:
            del session

    router = AgiRouter()
    flow = Flow()
    router.add_route("flow", flow)
    assert router.resolve("flow") is flow


async def test_unknown_script_closes_without_sending(server: FastAgiServer) -> None:
    with capture_logs() as logs:
        transcript = await play_asterisk(server.port, environment("nope"), [])
    assert transcript.commands == []
    assert transcript.closed_by_server
    assert any(e["event"] == "agi_unknown_script" and e["script"] == "nope" for e in logs)


async def wait_idle(server: FastAgiServer) -> None:
    """Wait until the server has finished every session (the fake may close first)."""
    for _ in range(200):
        if server.stats.active == 0:
            return
        await asyncio.sleep(0.005)
    raise AssertionError("sessions still active")


async def run_with(
    server: FastAgiServer,
    router: AgiRouter,
    handler: Handler,
    replies: list[str],
    **kwargs: Any,
) -> list[str]:
    """Route ``handler`` at ``t`` and play one call with ``replies``; return the commands."""
    router.add_route("t", handler)
    transcript = await play_asterisk(server.port, environment("t"), replies, **kwargs)
    return transcript.commands


async def test_trying_then_result(server: FastAgiServer, router: AgiRouter) -> None:
    seen: list[AgiResult] = []

    async def handler(session: AgiSession) -> None:
        seen.append(await session.exec("Playback", "hello-world"))

    commands = await run_with(server, router, handler, ["100 result=0 Trying...\n200 result=0\n"])
    assert commands == ['EXEC Playback "hello-world"']
    assert seen == [AgiResult(200, 0, None, {}, "0")]


async def test_510_and_520_raise_command_errors(server: FastAgiServer, router: AgiRouter) -> None:
    errors: list[AgiCommandError] = []

    async def handler(session: AgiSession) -> None:
        for text in ("FOO BAR", "GET DATA"):
            try:
                await session.command(text)
            except AgiCommandError as exc:
                errors.append(exc)
        await session.answer()  # the session is still usable afterwards

    usage = (
        "520-Invalid command syntax.  Proper usage follows:\n"
        " Usage: GET DATA <file to be streamed> [timeout] [maxdigits]\n"
        "520 End of proper usage.\n"
    )
    commands = await run_with(
        server,
        router,
        handler,
        ["510 Invalid or unknown command\n", usage, "200 result=0\n"],
    )
    assert commands == ["FOO BAR", "GET DATA", "ANSWER"]
    assert [e.code for e in errors] == [510, 520]
    assert errors[0].message == "Invalid or unknown command"
    assert "Usage: GET DATA" in errors[1].message


async def test_hangup_line_marks_session_and_next_command_raises(
    server: FastAgiServer, router: AgiRouter
) -> None:
    seen: dict[str, Any] = {}

    async def handler(session: AgiSession) -> None:
        seen["stream"] = await session.stream_file("welcome")
        try:
            await session.answer()
        except AgiHangup as exc:
            seen["reply"] = exc.reply
        seen["hung_up"] = session.hung_up
        try:
            await session.verbose("never sent")
        except AgiHangup:
            seen["raised_again"] = True

    commands = await run_with(
        server,
        router,
        handler,
        [
            "200 result=-1 endpos=1200\nHANGUP\n",
            "511 Command Not Permitted on a dead channel or intercept routine\n",
        ],
    )
    # HANGUP arrives after STREAM FILE's reply: the next command (ANSWER) raises, and
    # nothing more is written afterwards
    assert commands == ['STREAM FILE "welcome" ""', "ANSWER"]
    assert seen["stream"].extra == {"endpos": "1200"}
    assert seen["reply"].code == 511
    assert seen["hung_up"] is True
    assert seen["raised_again"] is True


async def test_hangup_before_reply_raises_with_the_reply(
    server: FastAgiServer, router: AgiRouter
) -> None:
    seen: dict[str, Any] = {}

    async def handler(session: AgiSession) -> None:
        try:
            await session.get_variable("X")
        except AgiHangup as exc:
            seen["reply"] = exc.reply
        seen["hung_up"] = session.hung_up
        with pytest.raises(AgiHangup):
            await session.verbose("never sent")
        seen["done"] = True

    commands = await run_with(server, router, handler, ["HANGUP\n200 result=1 (x)\n"])
    assert commands == ["GET VARIABLE X"]  # nothing written after HANGUP
    assert seen == {"reply": AgiResult(200, 1, "x", {}, "1"), "hung_up": True, "done": True}


async def test_511_raises_hangup(server: FastAgiServer, router: AgiRouter) -> None:
    seen: dict[str, Any] = {}

    async def handler(session: AgiSession) -> None:
        try:
            await session.answer()
        except AgiHangup as exc:
            seen["exc"] = str(exc)
        seen["hung_up"] = session.hung_up

    await run_with(
        server,
        router,
        handler,
        ["511 Command Not Permitted on a dead channel or intercept routine\n"],
    )
    assert "dead channel" in seen["exc"]
    assert seen["hung_up"] is True


async def test_eof_while_waiting_raises_hangup_and_is_not_a_handler_error(
    server: FastAgiServer, router: AgiRouter
) -> None:
    seen: dict[str, Any] = {}

    async def handler(session: AgiSession) -> None:
        try:
            await session.answer()
        except AgiHangup:
            seen["eof"] = True
            raise

    await run_with(server, router, handler, [], close_after_replies=True)
    await wait_idle(server)
    assert seen == {"eof": True}
    assert server.stats.handler_errors == 0


async def test_injection_rejected_before_anything_is_written(
    server: FastAgiServer, router: AgiRouter
) -> None:
    errors: list[Exception] = []

    async def handler(session: AgiSession) -> None:
        attempts: list[Callable[[], Awaitable[object]]] = [
            lambda: session.set_variable("X", "1\nEXEC System rm"),
            lambda: session.set_variable("X\r", "1"),
            lambda: session.exec("Dial", "PJSIP/100\x00"),
            lambda: session.verbose("a\rb"),
            lambda: session.command("ANSWER\nHANGUP"),
            lambda: session.get_data("beep\n"),
        ]
        for attempt in attempts:
            try:
                await attempt()
            except AgiInjectionError as exc:
                errors.append(exc)

    commands = await run_with(server, router, handler, [])
    assert commands == []
    assert len(errors) == 6


async def test_typed_command_formats_and_results(server: FastAgiServer, router: AgiRouter) -> None:
    seen: dict[str, Any] = {}

    async def handler(session: AgiSession) -> None:
        seen["timeout_empty"] = await session.get_data("menu", 3000, 1)
        seen["timeout_partial"] = await session.get_data("menu", 3000, 4)
        seen["digits"] = await session.get_data("menu")
        seen["missing"] = await session.get_variable("NOPE")
        seen["quoted"] = await session.get_full_variable('a "b" \\c')
        seen["dial"] = await session.exec("Dial", "PJSIP/100", "30")
        seen["noargs"] = await session.exec("Answer")
        seen["say"] = await session.say_digits("123")
        seen["no_digit"] = await session.wait_for_digit(1000)
        seen["digit"] = await session.wait_for_digit(1000)
        await session.set_context("ivr-out")
        await session.set_extension("s")
        await session.set_priority(1)
        seen["db"] = await session.database_get("tenant", "t1")
        seen["db_missing"] = await session.database_get("tenant", "t2")
        await session.database_put("tenant", "t1", "on")
        await session.verbose("张三 called", 3)
        seen["hangup"] = await session.hangup()
        seen["hung_up"] = session.hung_up

    commands = await run_with(
        server,
        router,
        handler,
        [
            "200 result= (timeout)\n",
            "200 result=12 (timeout)\n",
            "200 result=0123\n",
            "200 result=0\n",
            "200 result=1 (v)\n",
            "200 result=0\n",
            "200 result=0\n",
            "200 result=0\n",
            "200 result=0\n",
            "200 result=53\n",
            "200 result=0\n",
            "200 result=0\n",
            "200 result=0\n",
            "200 result=1 (on)\n",
            "200 result=0\n",
            "200 result=1\n",
            "200 result=1\n",
            "200 result=1\n",
        ],
    )
    assert commands == [
        'GET DATA "menu" 3000 1',
        'GET DATA "menu" 3000 4',
        'GET DATA "menu"',
        "GET VARIABLE NOPE",
        'GET FULL VARIABLE "a \\"b\\" \\\\c"',
        'EXEC Dial "PJSIP/100,30"',
        "EXEC Answer",
        'SAY DIGITS "123" ""',
        "WAIT FOR DIGIT 1000",
        "WAIT FOR DIGIT 1000",
        "SET CONTEXT ivr-out",
        "SET EXTENSION s",
        "SET PRIORITY 1",
        'DATABASE GET "tenant" "t1"',
        'DATABASE GET "tenant" "t2"',
        'DATABASE PUT "tenant" "t1" "on"',
        'VERBOSE "张三 called" 3',
        "HANGUP",
    ]
    assert seen["timeout_empty"] == ""
    assert seen["timeout_partial"] == "12"
    assert seen["digits"] == "0123"
    assert seen["missing"] is None
    assert seen["quoted"] == "v"
    assert seen["dial"].result == 0
    assert seen["say"].result == 0
    assert seen["no_digit"] is None
    assert seen["digit"] == "5"
    assert seen["db"] == "on"
    assert seen["db_missing"] is None
    assert seen["hangup"].result == 1
    assert seen["hung_up"] is True


async def test_command_timeout_makes_session_unusable(router: AgiRouter) -> None:
    seen: dict[str, Any] = {}

    async def handler(session: AgiSession) -> None:
        with pytest.raises(AgiTimeoutError):
            await session.answer()
        seen["timed_out"] = True

    router.add_route("t", handler)
    srv = FastAgiServer(AgiServerConfig(port=0, command_timeout=0.1), router)
    await srv.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(environment("t"))
        assert await reader.readline() == b"ANSWER\n"  # never answered
        assert await asyncio.wait_for(reader.read(), 2.0) == b""  # server closed
        writer.close()
    finally:
        await srv.stop()
    assert seen == {"timed_out": True}


async def test_handler_exception_is_isolated(server: FastAgiServer, router: AgiRouter) -> None:
    release = asyncio.Event()
    seen: dict[str, Any] = {}

    async def failing(session: AgiSession) -> None:
        await session.answer()
        raise RuntimeError("boom")

    async def slow(session: AgiSession) -> None:
        await release.wait()
        seen["status"] = await session.channel_status()

    router.add_route("fail", failing)
    router.add_route("slow", slow)
    with capture_logs() as logs:
        slow_call = asyncio.create_task(
            play_asterisk(server.port, environment("slow"), ["200 result=6\n"])
        )
        failed = await play_asterisk(server.port, environment("fail"), ["200 result=0\n"])
        release.set()
        slow_transcript = await slow_call
    assert failed.closed_by_server
    assert slow_transcript.commands == ["CHANNEL STATUS"]
    assert seen["status"] == 6
    assert server.listening
    assert server.stats.handler_errors == 1
    failures = [e for e in logs if e["event"] == "agi_handler_failed"]
    assert len(failures) == 1
    assert failures[0]["script"] == "fail"
    assert failures[0]["channel"] == "PJSIP/sipp-00000001"


async def test_a_finished_script_ends_with_the_done_mark(router: AgiRouter) -> None:
    # The shipped dialplan's node failover (docs/ha.md) moves on to the next node unless the
    # script's last command set CCB_AGI_DONE to its name: a node that died mid-script gets
    # AGISTATUS=SUCCESS from Asterisk too, so the status cannot tell.
    async def answers(session: AgiSession) -> None:
        await session.answer()

    async def fails(session: AgiSession) -> None:
        await session.answer()
        raise RuntimeError("boom")

    async def hangs_up(session: AgiSession) -> None:
        await session.hangup()

    router.add_route("inbound", answers)
    router.add_route("fail", fails)
    router.add_route("gone", hangs_up)
    srv = FastAgiServer(AgiServerConfig(port=0, done_variable=DONE_VARIABLE), router)
    await srv.start()
    try:
        done = await play_asterisk(
            srv.port, environment("inbound?x=1"), ["200 result=0\n", "200 result=1\n"]
        )
        failed = await play_asterisk(srv.port, environment("fail"), ["200 result=0\n"])
        gone = await play_asterisk(srv.port, environment("gone"), ["200 result=1\n"])
    finally:
        await srv.stop()
    assert done.commands == ["ANSWER", 'SET VARIABLE CCB_AGI_DONE "inbound"']
    assert failed.commands == ["ANSWER"]  # no mark: the dialplan asks the next node
    assert gone.commands == ["HANGUP"]  # the channel is gone: nothing to tell


async def test_without_a_done_variable_nothing_is_added(
    server: FastAgiServer, router: AgiRouter
) -> None:
    async def answers(session: AgiSession) -> None:
        await session.answer()

    router.add_route("inbound", answers)
    transcript = await play_asterisk(server.port, environment("inbound"), ["200 result=0\n"])
    assert transcript.commands == ["ANSWER"]


async def read_or_reset(reader: asyncio.StreamReader) -> bytes:
    """Read to EOF; a reset (the server aborted) counts as EOF."""
    try:
        return await asyncio.wait_for(reader.read(), 2.0)
    except ConnectionResetError:
        return b""


async def test_peer_not_allowed_is_closed_before_reading(router: AgiRouter) -> None:
    called: list[str] = []

    async def handler(session: AgiSession) -> None:
        called.append(session.script)

    router.add_route("t", handler)
    srv = FastAgiServer(AgiServerConfig(port=0, allowed_peers=("10.0.0.0/8",)), router)
    await srv.start()
    try:
        with capture_logs() as logs:
            reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
            # nothing sent: the server must decide on the address alone
            assert await read_or_reset(reader) == b""
            writer.close()
        stats = srv.stats
    finally:
        await srv.stop()
    assert called == []
    assert stats.refused_peer == 1
    assert stats.active == 0
    assert any(e["event"] == "agi_peer_refused" and "127.0.0.1" in e["peer"] for e in logs)


def test_allow_list_matching() -> None:
    srv = FastAgiServer(
        AgiServerConfig(allowed_peers=("192.168.1.0/24", "10.1.2.3", "fd00::/8")), AgiRouter()
    )
    assert srv._peer_allowed(("192.168.1.77", 4000))
    assert srv._peer_allowed(("10.1.2.3", 4000))
    assert not srv._peer_allowed(("10.1.2.4", 4000))
    assert srv._peer_allowed(("::ffff:192.168.1.5", 4000, 0, 0))
    assert srv._peer_allowed(("fd00::1", 4000, 0, 0))
    assert not srv._peer_allowed(("127.0.0.1", 4000))
    assert not srv._peer_allowed(None)
    with pytest.raises(ValueError, match="does not appear"):
        FastAgiServer(AgiServerConfig(allowed_peers=("not-an-ip",)), AgiRouter())


async def test_stop_cancels_live_sessions_and_stats(router: AgiRouter) -> None:
    started = asyncio.Event()
    cancelled: list[bool] = []

    async def forever(session: AgiSession) -> None:
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    router.add_route("t", forever)
    srv = FastAgiServer(AgiServerConfig(port=0, stop_grace=0), router)
    await srv.start()
    was_listening = srv.listening
    reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
    writer.write(environment("t"))
    await asyncio.wait_for(started.wait(), 2.0)
    assert srv.stats.active == 1
    assert srv.stats.total == 1
    await asyncio.wait_for(srv.stop(), 2.0)
    assert cancelled == [True]
    assert (was_listening, srv.listening) == (True, False)
    assert srv.stats.active == 0
    assert await asyncio.wait_for(reader.read(), 2.0) == b""
    writer.close()


async def test_stop_during_a_session_reports_no_unhandled_exception(router: AgiRouter) -> None:
    """Python 3.11's stream callback asks a cancelled connection task for its exception; a
    session cancelled by stop() must end normally, so no bogus traceback reaches the log."""
    started = asyncio.Event()
    reported: list[dict[str, object]] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _loop, context: reported.append(context))

    async def forever(session: AgiSession) -> None:
        started.set()
        await session.command("GET VARIABLE CCB_NEVER_ANSWERED")

    router.add_route("t", forever)
    srv = FastAgiServer(AgiServerConfig(port=0, stop_grace=0), router)
    await srv.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
    writer.write(environment("t"))
    await asyncio.wait_for(started.wait(), 2.0)
    try:
        await asyncio.wait_for(srv.stop(), 2.0)
        assert await asyncio.wait_for(reader.read(), 2.0) == b"GET VARIABLE CCB_NEVER_ANSWERED\n"
        for _ in range(3):
            await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(None)
        writer.close()
    assert reported == []
    assert srv.stats.active == 0


async def test_stop_lets_a_session_in_flight_finish_within_the_grace(router: AgiRouter) -> None:
    """A routing decision half made at SIGTERM completes instead of being cut."""
    started, finished = asyncio.Event(), asyncio.Event()

    async def quick(session: AgiSession) -> None:
        started.set()
        await asyncio.sleep(0.05)
        finished.set()

    router.add_route("t", quick)
    srv = FastAgiServer(AgiServerConfig(port=0, stop_grace=5.0), router)
    await srv.start()
    _, writer = await asyncio.open_connection("127.0.0.1", srv.port)
    writer.write(environment("t"))
    await asyncio.wait_for(started.wait(), 2.0)
    await asyncio.wait_for(srv.stop(), 10.0)
    writer.close()
    assert finished.is_set()
    assert srv.stats.handler_errors == 0


async def test_serve_forever_in_task_group(router: AgiRouter) -> None:
    async def handler(session: AgiSession) -> None:
        await session.answer()

    router.add_route("t", handler)
    srv = FastAgiServer(AgiServerConfig(port=0), router)
    async with asyncio.TaskGroup() as group:
        serving = group.create_task(srv.serve_forever())
        for _ in range(100):
            if srv.listening:
                break
            await asyncio.sleep(0.01)
        transcript = await play_asterisk(srv.port, environment("t"), ["200 result=0\n"])
        serving.cancel()  # how a TaskGroup shuts the service down
    assert transcript.commands == ["ANSWER"]
    assert serving.cancelled()
    assert not srv.listening


async def test_deadline_follows_each_command(router: AgiRouter) -> None:
    """The lazy timer armed by a fast command must neither expire nor outlive a later one."""
    seen: dict[str, Any] = {}

    async def handler(session: AgiSession) -> None:
        await session.command("ANSWER", reply_timeout=0.1)  # arms a timer at +0.1 s
        seen["slow_ok"] = await session.command("NOOP", reply_timeout=0.5)  # answered at +0.2 s
        await session.command("VERBOSE x", reply_timeout=10.0)
        with pytest.raises(AgiTimeoutError):
            await session.command("WAIT FOR DIGIT 1", reply_timeout=0.1)  # sooner than 10 s
        seen["timed_out"] = True

    router.add_route("t", handler)
    srv = FastAgiServer(AgiServerConfig(port=0), router)
    await srv.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(environment("t"))
        assert await reader.readline() == b"ANSWER\n"
        writer.write(b"200 result=0\n")
        assert await reader.readline() == b"NOOP\n"
        await asyncio.sleep(0.2)
        writer.write(b"200 result=0\n")
        assert await reader.readline() == b"VERBOSE x\n"
        writer.write(b"200 result=1\n")
        assert await reader.readline() == b"WAIT FOR DIGIT 1\n"
        started = asyncio.get_running_loop().time()
        assert await read_or_reset(reader) == b""
        assert asyncio.get_running_loop().time() - started < 1.0
        writer.close()
        await wait_idle(srv)
    finally:
        await srv.stop()
    assert seen["slow_ok"].code == 200
    assert seen["timed_out"] is True
