// `/wallboard`: the supervisor's live floor. The wallboard endpoint's SSE stream pushes each
// change (queues, seats, alerts); listen/whisper/barge go through the seat's spy endpoint.

import { ApiError, api, control, stream } from "./api.js";
import { t } from "./i18n.js";
import { announce, announceError, el, fmtDuration, fmtTime, requireSession, since, startPage, tenantPath } from "./shell.js";

const $ = (id) => document.getElementById(id);
const who = requireSession();
const view = { board: null, fallback: false, seenAlerts: new Set(), chartRows: [] };

function stateBadge(state) {
  return el("span", { class: `badge state-${state}`, "data-state": state }, t(`state.${state}`));
}

function slCell(sl) {
  const status = sl?.status || "none";
  const text =
    sl && sl.value_pct !== null && sl.value_pct !== undefined
      ? t("wb.sl_value", { value: Number(sl.value_pct).toFixed(1), target: sl.target_pct, seconds: sl.threshold_seconds })
      : "—";
  return el("td", {}, el("span", { class: `badge sl-${status}`, "data-status": status }, t(`wb.status.${status}`)), " ", text);
}

function render() {
  const board = view.board;
  if (!board) return;
  $("wb-updated").textContent = t("wb.updated", { time: fmtTime(board.generated_at) });
  $("wb-updated").dataset.generatedAt = board.generated_at;
  $("groups").tBodies[0].replaceChildren(
    ...board.skill_groups.map((g) =>
      el(
        "tr",
        { "data-group": g.name },
        el("th", { scope: "row" }, g.name),
        el("td", { "data-field": "calls_waiting" }, g.calls_waiting),
        el("td", {}, fmtDuration(g.longest_wait_seconds)),
        el("td", { "data-field": "offered_today" }, g.offered_today),
        el("td", { "data-field": "answered_today" }, g.answered_today),
        el("td", {}, g.abandoned_today),
        el("td", {}, ["ready", "not_ready", "break", "on_call", "wrap_up"].map((s) => g.agents?.[s] ?? 0).join(" / ")),
        slCell(g.service_level),
      ),
    ),
  );
  renderSeats();
  const alerts = board.alerts || [];
  $("alerts").replaceChildren(
    ...(alerts.length
      ? alerts.map((a) =>
          el(
            "li",
            { class: `alert-item sev-${a.severity}`, "data-rule": a.rule, "data-agent": a.agent_no || "" },
            el("strong", {}, `${a.rule}`),
            " · ",
            a.message,
            " ",
            el("span", { class: "muted" }, fmtTime(a.started_at)),
          ),
        )
      : [el("li", { class: "muted" }, t("wb.alerts_none"))]),
  );
  for (const a of alerts) {
    const key = a.id || `${a.rule}:${a.agent_no}:${a.skill_group}:${a.started_at}`;
    if (!view.seenAlerts.has(key)) {
      view.seenAlerts.add(key);
      announce(`${t("wb.alerts")}: ${a.message}`, "info");
    }
  }
}

function renderSeats() {
  const seats = view.board?.seats || [];
  $("seats").tBodies[0].replaceChildren(
    ...seats.map((s) =>
      el(
        "tr",
        { "data-agent": s.agent_no },
        el("th", { scope: "row" }, s.agent_no),
        el("td", {}, s.name || ""),
        el("td", {}, stateBadge(s.state)),
        el("td", { class: "duration", "data-since": s.state_since || "" }, fmtDuration(since(s.state_since))),
        el("td", {}, s.reason || ""),
        el("td", {}, s.call_id || ""),
        el(
          "td",
          {},
          s.call_id && !view.fallback
            ? ["listen", "whisper", "barge"].map((mode) =>
                el(
                  "button",
                  {
                    type: "button",
                    class: "secondary",
                    "aria-label": `${t(`wb.${mode}`)} ${s.agent_no}`,
                    onclick: () => spy(s.agent_no, mode),
                  },
                  t(`wb.${mode}`),
                ),
              )
            : "",
        ),
      ),
    ),
  );
}

function tickDurations() {
  for (const cell of document.querySelectorAll("td.duration")) {
    cell.textContent = fmtDuration(since(cell.dataset.since));
  }
}

async function spy(agentNo, mode) {
  const supervisor = $("supervisor-no").value.trim();
  if (!supervisor) {
    $("supervisor-no").setAttribute("aria-invalid", "true");
    $("supervisor-no").focus();
    announce(`${t("err.generic")}: ${t("wb.supervisor_no")}`, "error");
    return;
  }
  $("supervisor-no").removeAttribute("aria-invalid");
  try {
    await control(tenantPath(who, `/seats/${encodeURIComponent(agentNo)}/spy`), { mode, supervisor_agent_no: supervisor });
    announce(t("wb.spy_started", { mode: t(`wb.${mode}`), agent: agentNo }), "ok");
  } catch (err) {
    announceError(err);
  }
}

/** Without the wallboard endpoint: the live seat list and the seat alerts, polled. */
async function pollFallback() {
  try {
    const [seats, alerts] = await Promise.all([api("GET", "/api/v1/seats/live", { query: { tenant: who.tenant } }), api("GET", tenantPath(who, "/seats/alerts"))]);
    view.board = {
      generated_at: new Date().toISOString(),
      skill_groups: [],
      seats: seats.map((s) => ({ agent_no: s.agent_no, name: "", state: s.state, state_since: s.since, reason: s.reason, call_id: s.current_call })),
      alerts: alerts.map((a) => ({ rule: a.code, severity: "warning", agent_no: a.agent_no, message: a.message, started_at: a.at })),
    };
    render();
  } catch (err) {
    announceError(err);
  }
}

async function loadChart() {
  try {
    let timezone;
    try {
      timezone = (await api("GET", tenantPath(who, "/reports/settings"))).timezone;
    } catch {
      timezone = undefined;
    }
    const day = new Intl.DateTimeFormat("en-CA", { timeZone: timezone }).format(new Date());
    const report = await api("GET", tenantPath(who, "/reports/service-level"), { query: { from: day, to: day, interval: "60min" } });
    view.chartRows = report.rows;
    drawChart();
  } catch (err) {
    if (!(err instanceof ApiError && (err.status === 403 || err.status === 404))) announceError(err);
  }
}

function drawChart() {
  const rows = view.chartRows;
  const box = $("chart");
  if (!rows.length) {
    box.replaceChildren(el("p", { class: "muted" }, t("common.none")));
    return;
  }
  const NS = "http://www.w3.org/2000/svg";
  const width = 24 * 22 + 40;
  const height = 140;
  const max = Math.max(1, ...rows.map((r) => r.offered || 0));
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("class", "chart");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("width", String(width));
  svg.setAttribute("height", String(height));
  svg.setAttribute("role", "img");
  const summary = rows.map((r) => `${r.interval_start.slice(11, 16)} ${r.offered}/${r.answered}`).join(", ");
  svg.setAttribute("aria-label", `${t("wb.chart")}: ${summary}`);
  rows.forEach((r) => {
    const hour = Number(r.interval_start.slice(11, 13));
    const x = 30 + hour * 22;
    for (const [key, offset, cls] of [["offered", 0, "bar-offered"], ["answered", 9, "bar-answered"]]) {
      const h = ((r[key] || 0) / max) * (height - 30);
      const rect = document.createElementNS(NS, "rect");
      rect.setAttribute("x", String(x + offset));
      rect.setAttribute("y", String(height - 18 - h));
      rect.setAttribute("width", "8");
      rect.setAttribute("height", String(h));
      rect.setAttribute("class", cls);
      svg.append(rect);
    }
    const label = document.createElementNS(NS, "text");
    label.setAttribute("x", String(x));
    label.setAttribute("y", String(height - 4));
    label.textContent = String(hour).padStart(2, "0");
    svg.append(label);
  });
  box.replaceChildren(svg);
}

async function start() {
  try {
    view.board = await api("GET", tenantPath(who, "/wallboard"));
    render();
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) {
      view.fallback = true;
      $("groups").closest("section").hidden = true;
      $("wb-fallback").hidden = false;
      pollFallback();
      setInterval(pollFallback, 2000);
      return;
    }
    announceError(err);
  }
  stream(
    tenantPath(who, "/wallboard/stream"),
    (type, data) => {
      if (type === "wallboard") {
        view.board = data;
        render();
      }
    },
    { onStatus: (s) => ($("wb-live").textContent = s === "open" ? `● ${t("wb.live")}` : "") },
  );
}

startPage(() => {
  render();
  drawChart();
});
if (who) {
  if (who.agentNo) $("supervisor-no").value = who.agentNo;
  start();
  loadChart();
  setInterval(tickDurations, 1000);
  setInterval(loadChart, 60000);
}
