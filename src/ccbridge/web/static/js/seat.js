// `/seat`: the agent's seat bar. Seat actions, call control and wrap-up go through the seat and
// call endpoints with the agent's own token; the tenant's event stream says when to look again.

import { ApiError, api, control, stream } from "./api.js";
import { t } from "./i18n.js";
import { announce, announceError, el, fmtDuration, fmtTime, requireSession, since, startPage, tenantPath } from "./shell.js";

const BREAKS_PER_DAY = 3; // the seat rules' defaults (docs/seat-states.md)
const BREAK_SECONDS = 600;

const $ = (id) => document.getElementById(id);
const who = requireSession();
const agentNo = who?.agentNo || new URLSearchParams(location.search).get("agent") || "";

const view = {
  seat: null,
  callId: null,
  params: null,
  history: [],
  held: false,
  muted: false,
  wrapupCall: null,
  breaksToday: 0,
  breakStarted: null,
};

function seatPath(rest) {
  return tenantPath(who, `/seats/${encodeURIComponent(agentNo)}${rest}`);
}

function isToday(iso) {
  const d = new Date(iso);
  const now = new Date();
  return d.toDateString() === now.toDateString();
}

async function refresh() {
  if (!who || !agentNo) return;
  let seats;
  try {
    seats = await api("GET", "/api/v1/seats/live");
  } catch (err) {
    announceError(err);
    return;
  }
  view.seat = seats.find((s) => s.agent_no === agentNo) || null;
  const callId = view.seat?.current_call || null;
  if (callId && callId === view.callId && view.callState !== "connected") {
    await loadCall(callId); // rung, not yet answered: look again until it is
  } else if (callId !== view.callId) {
    if (view.callId) view.wrapupCall = view.callId;
    view.callId = callId;
    view.held = false;
    view.muted = false;
    view.params = null;
    view.callState = null;
    view.history = [];
    if (callId) await loadCall(callId);
  }
  render();
}

async function loadCall(callId) {
  try {
    const found = await api("GET", tenantPath(who, `/calls/${encodeURIComponent(callId)}/params`));
    view.params = found.params;
    view.callState = found.state;
    view.wrapupCall = callId;
    const page = await api("GET", tenantPath(who, "/calls"), { query: { limit: 200 } });
    view.history = page.items.filter((c) => c.caller && c.caller === found.params.caller_original && c.call_id !== callId);
    if (!view.history.length) {
      view.history = page.items.filter((c) => c.caller && c.caller === found.params.caller && c.call_id !== callId);
    }
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 404)) announceError(err);
  }
}

function render() {
  $("seat-h").textContent = t("seat.agent", { agent: agentNo || "?" });
  const state = view.seat?.state || "signed_out";
  const badge = $("seat-state");
  badge.textContent = t(`state.${state}`);
  badge.className = `badge state-${state}`;
  badge.dataset.state = state;
  $("seat-since").textContent = view.seat ? t("seat.since", { time: fmtTime(view.seat.since) }) : "";
  $("seat-reason").textContent = view.seat?.reason ? `(${view.seat.reason})` : "";
  const signedIn = Boolean(view.seat);
  $("btn-signin").disabled = signedIn;
  $("btn-signout").disabled = !signedIn;
  for (const id of ["btn-ready", "btn-not-ready", "btn-break"]) $(id).disabled = !signedIn;
  renderBreak();
  const onCall = Boolean(view.callId);
  $("no-call").hidden = onCall;
  $("call-box").hidden = !onCall;
  if (onCall) {
    $("call-id").textContent = view.callId;
    if (view.params) {
      const p = view.params;
      const pop = $("pop");
      const text = t("seat.pop", { caller: p.caller ?? "?", callee: p.callee ?? "?", group: p.skill_group ?? "" });
      if (pop.textContent !== text) pop.textContent = text; // the screen pop: re-set only on change
      pop.hidden = false;
    }
    const callState = $("call-state");
    callState.textContent = t(`call.${view.callState || "ringing"}`);
    callState.dataset.state = view.callState || "";
    for (const key of ["agent_no", "skill_group", "caller", "callee"]) {
      $(`var-${key}`).textContent = view.params?.[key] ?? "—";
    }
    $("history").replaceChildren(
      ...(view.history.length
        ? view.history.slice(0, 10).map((c) =>
            el("li", {}, `${fmtTime(c.started_at)} · ${c.skill_group || ""} · ${c.agent_no || "—"} · ${c.state || ""}`),
          )
        : [el("li", { class: "muted" }, t("seat.history_none"))]),
    );
  } else {
    $("pop").hidden = true;
  }
  const hold = $("btn-hold");
  hold.textContent = t(view.held ? "seat.resume" : "seat.hold");
  hold.setAttribute("aria-pressed", String(view.held));
  const mute = $("btn-mute");
  mute.textContent = t(view.muted ? "seat.unmute" : "seat.mute");
  mute.setAttribute("aria-pressed", String(view.muted));
  const outbound = view.seat?.kind === "inbound_outbound";
  $("dial-row").hidden = !outbound;
  $("dial-not-allowed").hidden = outbound || !view.seat;
  $("dial-not-allowed").textContent = t("seat.dial_not_allowed", { kind: view.seat?.kind || "" });
  $("wrapup-call").textContent = view.wrapupCall || t("common.none");
  $("btn-wrapup").disabled = !view.wrapupCall;
}

function renderBreak() {
  const parts = [t("seat.breaks_today", { count: view.breaksToday, max: BREAKS_PER_DAY })];
  if (view.seat?.state === "break") {
    const left = BREAK_SECONDS - since(view.seat.since);
    parts.push(left >= 0 ? t("seat.break_left", { left: fmtDuration(left) }) : t("seat.break_over", { over: fmtDuration(-left) }));
  }
  $("break-info").textContent = parts.join(" · ");
}

/** Run one action; announce success, or the server's refusal in its own words. */
async function act(label, run) {
  try {
    const result = await run();
    announce(t("seat.done", { action: label }), "ok");
    await refresh();
    return result;
  } catch (err) {
    if (err instanceof ApiError) announceError(err);
    else announce(`${t("err.generic")}: ${err.message}`, "error");
    return null;
  }
}

function target(kindId, valueId) {
  return { [$(kindId).value]: $(valueId).value.trim() };
}

function wire() {
  $("btn-signin").onclick = () =>
    act(t("seat.signin"), () => {
      const phone = $("phone").value.trim();
      return api("POST", seatPath("/sign-in"), { body: phone ? { endpoint: phone } : {} });
    });
  $("btn-signout").onclick = () => act(t("seat.signout"), () => api("POST", seatPath("/sign-out")));
  $("btn-ready").onclick = () => act(t("seat.ready"), () => api("POST", seatPath("/state"), { body: { action: "ready" } }));
  $("btn-not-ready").onclick = () =>
    act(t("seat.not_ready"), () =>
      api("POST", seatPath("/state"), { body: { action: "not_ready", reason: $("reason").value.trim() } }),
    );
  $("btn-break").onclick = () => act(t("seat.break"), () => api("POST", seatPath("/state"), { body: { action: "break" } }));
  $("btn-hold").onclick = async () => {
    const out = await act(t(view.held ? "seat.resume" : "seat.hold"), () => control(seatPath(view.held ? "/call/resume" : "/call/hold")));
    if (out) {
      view.held = out.held;
      render();
    }
  };
  $("btn-mute").onclick = async () => {
    const out = await act(t(view.muted ? "seat.unmute" : "seat.mute"), () => control(seatPath(view.muted ? "/call/unmute" : "/call/mute")));
    if (out) {
      view.muted = !view.muted;
      render();
    }
  };
  $("btn-hangup").onclick = () => act(t("seat.hangup"), () => control(seatPath("/call/hangup")));
  $("btn-transfer").onclick = () =>
    act(t("seat.transfer"), () =>
      control(seatPath("/call/transfer"), { ...target("transfer-kind", "transfer-target"), mode: $("transfer-mode").value }),
    );
  $("btn-transfer-complete").onclick = () => act(t("seat.transfer_complete"), () => control(seatPath("/call/transfer/complete")));
  $("btn-transfer-cancel").onclick = () => act(t("seat.transfer_cancel"), () => control(seatPath("/call/transfer/cancel")));
  $("btn-conference").onclick = () => act(t("seat.conference"), () => control(seatPath("/call/conference"), target("conf-kind", "conf-target")));
  $("btn-conference-leave").onclick = () => act(t("seat.conference_leave"), () => control(seatPath("/call/conference/leave")));
  $("btn-ivr").onclick = () =>
    act(t("seat.ivr"), () =>
      control(seatPath("/call/ivr"), { flow_node: $("ivr-node").value.trim(), back_to_agent: $("ivr-back").checked }),
    );
  $("btn-dial").onclick = () => {
    const value = $("dial-number").value.trim();
    const body = /^[0-9A-Za-z][0-9A-Za-z_-]{0,31}$/.test(value) && value.length <= 6 ? { agent_no: value } : { number: value };
    return act(t("seat.dial"), () => control(seatPath("/dial"), body));
  };
  $("btn-wrapup").onclick = async () => {
    const call = view.wrapupCall;
    const out = await act(t("seat.wrapup"), () =>
      api("POST", tenantPath(who, `/calls/${encodeURIComponent(call)}/wrapup`), {
        body: { disposition: $("disposition").value, notes: $("notes").value, agent_no: agentNo, submission_id: `${call}:${agentNo}` },
      }),
    );
    if (out !== null) {
      announce(t("seat.wrapup_done", { call }), "ok");
      view.wrapupCall = null;
      render();
    }
  };
}

/** Count today's breaks from the journal, then follow the stream from there. */
async function follow() {
  let after = "0";
  try {
    for (;;) {
      const page = await api("GET", tenantPath(who, "/events"), { query: { after, limit: 1000, type: "agent.state_changed" } });
      for (const e of page.items) countBreak(e);
      if (!page.items.length || page.next_after === after) break;
      after = page.next_after;
    }
  } catch (err) {
    announceError(err);
  }
  stream(tenantPath(who, `/events/stream?after=${encodeURIComponent(after)}`), (type, envelope) => onEvent(type, envelope));
}

function countBreak(e) {
  const d = e.data || {};
  if (d.agent_no === agentNo && d.state === "break" && d.previous_state !== "break" && isToday(e.occurred_at)) view.breaksToday += 1;
}

function onEvent(type, envelope) {
  const d = envelope?.data || {};
  const mine = d.agent_no === agentNo || d.params?.agent_no === agentNo || d.control?.agent_no === agentNo;
  if (type === "agent.state_changed") countBreak(envelope);
  if (type === "call.ringing" && d.params?.agent_no === agentNo) {
    const p = d.params;
    const pop = $("pop");
    pop.textContent = t("seat.pop", { caller: p.caller ?? "?", callee: p.callee ?? "?", group: p.skill_group ?? "" });
    pop.hidden = false;
  }
  if (type === "call.held" && mine) view.held = true;
  if (type === "call.resumed" && mine) view.held = false;
  if (view.callId && envelope?.call_id === view.callId && d.params) {
    view.params = d.params; // the event carries the four variables as they are now
    if (d.state) view.callState = d.state;
    render();
  }
  if (mine || (view.callId && envelope?.call_id === view.callId)) refresh();
}

startPage(render);
if (who) {
  wire();
  render();
  refresh();
  follow();
  api("GET", tenantPath(who, "/endpoints"))
    .then((list) => $("phones").replaceChildren(...list.map((p) => el("option", { value: p.interface }))))
    .catch(() => {});
  setInterval(renderBreak, 1000);
  setInterval(refresh, 5000);
}
