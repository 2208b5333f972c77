"""Random but plausible call sets and agent state histories for the tally property tests.

Times are whole seconds (sums of whole seconds are exact in floating point, so "identical"
means identical). Agents work shifts that cross local and UTC midnights (UTC midnight is
08:00 in Shanghai), calls cross 15-minute boundaries, some agents stay signed in (their last
interval is open), and after-call work follows most answered calls.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from ccbridge.domain.agents.state import AgentState
from ccbridge.domain.calls.model import CallRecord, CallSegment, CallState, CallTransfer
from ccbridge.domain.reports.model import StateSpan

START = datetime(2026, 3, 1, 14, 0, tzinfo=UTC)
"""22:00 in Shanghai, so the first shift crosses a local midnight, then a UTC midnight."""
GROUPS = ("sales", "support")


def random_history(
    seed: int, agents: int = 3, hours: int = 30, tenant: str = "acme", start: datetime = START
) -> tuple[list[CallRecord], list[StateSpan]]:
    """Calls and state spans of *agents* agents over *hours* hours from *start*."""
    rnd = random.Random(seed)
    calls: list[CallRecord] = []
    spans: list[StateSpan] = []
    end = start + timedelta(hours=hours)
    n = 0
    for a in range(agents):
        agent = f"A{a}"
        t = start + timedelta(seconds=rnd.randint(0, 3600))
        state_start = t
        state, reason = AgentState.READY, ""

        def switch(to: AgentState, at: datetime, why: str = "", who: str = agent) -> None:
            nonlocal state, reason, state_start
            spans.append(StateSpan(who, state, reason, state_start, at))
            state, reason, state_start = to, why, at

        while t < end - timedelta(minutes=30):
            t += timedelta(seconds=rnd.randint(5, 900))
            roll = rnd.random()
            n += 1
            cid = f"{seed}-{n}"
            group = rnd.choice(GROUPS)
            caller = f"13{rnd.randint(0, 9)}0000{rnd.randint(0, 9999):04d}"
            if roll < 0.1:  # a break or a 示忙
                to = AgentState.BREAK if rnd.random() < 0.5 else AgentState.NOT_READY
                switch(to, t, "" if to is AgentState.BREAK else rnd.choice(("meeting", "training")))
                t += timedelta(seconds=rnd.randint(60, 2400))
                switch(AgentState.READY, t)
                continue
            queued = t
            started = queued - timedelta(seconds=rnd.randint(0, 20))
            if roll < 0.25:  # abandoned, some within the short-abandon threshold
                gone = queued + timedelta(seconds=rnd.randint(1, 90))
                calls.append(
                    CallRecord(
                        call_id=cid,
                        started_at=started,
                        state=CallState.ABANDONED,
                        tenant=tenant,
                        caller=caller,
                        callee="4001234567",
                        skill_group=group,
                        queued_at=queued,
                        ended_at=gone,
                    )
                )
                continue
            if roll < 0.32:  # outbound
                answered = t + timedelta(seconds=rnd.randint(3, 20))
                ended = answered + timedelta(seconds=rnd.randint(5, 300))
                switch(AgentState.ON_CALL, t)
                calls.append(
                    CallRecord(
                        call_id=cid,
                        started_at=t,
                        state=CallState.ENDED,
                        tenant=tenant,
                        caller="1002",
                        callee="13900001111",
                        agent_no=agent,
                        answered_at=answered,
                        ended_at=ended,
                    )
                )
                switch(AgentState.READY, ended)
                t = ended
                continue
            answered = queued + timedelta(seconds=rnd.randint(0, 80))
            talk = rnd.randint(3, 900)
            ended = answered + timedelta(seconds=talk)
            segs = [
                CallSegment(
                    1, agent, f"PJSIP/{agent}", group, caller, "4001", "queue", answered, ended
                )
            ]
            transfers: tuple[CallTransfer, ...] = ()
            if rnd.random() < 0.15 and agents > 1:
                other = f"A{(a + 1) % agents}"
                mid = answered + timedelta(seconds=talk // 2)
                segs = [
                    CallSegment(
                        1, agent, f"PJSIP/{agent}", group, caller, "4001", "queue", answered, mid
                    ),
                    CallSegment(
                        2,
                        other,
                        f"PJSIP/{other}",
                        group,
                        caller,
                        "4001",
                        "blind_transfer",
                        mid,
                        ended,
                    ),
                ]
                transfers = (CallTransfer("blind", mid, agent, other),)
            in_progress = ended > end
            switch(AgentState.ON_CALL, answered)
            calls.append(
                CallRecord(
                    call_id=cid,
                    started_at=started,
                    state=CallState.ANSWERED if in_progress else CallState.ENDED,
                    tenant=tenant,
                    caller=caller,
                    callee="4001234567",
                    skill_group=group,
                    agent_no=segs[-1].agent_no,
                    queued_at=queued,
                    answered_at=answered,
                    ended_at=None if in_progress else ended,
                    segments=tuple(segs),
                    transfers=transfers,
                )
            )
            if in_progress:
                t = end
                break
            t = ended
            if rnd.random() < 0.8:
                switch(AgentState.AFTER_CALL_WORK, t)
                t += timedelta(seconds=rnd.randint(1, 120))
            switch(AgentState.READY, t)
        if rnd.random() < 0.5 or state is AgentState.ON_CALL:
            spans.append(StateSpan(agent, state, reason, state_start, None))  # still signed in
        else:
            switch(AgentState.SIGNED_OUT, t)
            spans.append(StateSpan(agent, state, reason, state_start, None))
    spans.sort(key=lambda s: (s.started_at, s.agent_no))
    calls.sort(key=lambda c: (c.started_at, c.call_id))
    return calls, spans
