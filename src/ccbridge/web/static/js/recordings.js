// `/recordings`: search the tenant's recordings and play one through a short-lived signed link
// (the browser's player seeks with HTTP Range requests on that link).

import { api } from "./api.js";
import { t } from "./i18n.js";
import { announce, announceError, el, fmtDuration, fmtTime, requireSession, startPage, tenantPath } from "./shell.js";

const $ = (id) => document.getElementById(id);
const who = requireSession();
let found = [];

function isoOf(local) {
  return local ? new Date(local).toISOString() : undefined;
}

async function search(event) {
  event?.preventDefault();
  const f = $("search-form");
  const query = {
    caller: f.caller.value.trim(),
    callee: f.callee.value.trim(),
    agent_no: f.agent_no.value.trim(),
    skill_group: f.skill_group.value.trim(),
    started_from: isoOf(f.started_from.value),
    started_to: isoOf(f.started_to.value),
    limit: 100,
  };
  try {
    const page = await api("GET", tenantPath(who, "/recordings"), { query });
    found = page.items;
    render();
  } catch (err) {
    announceError(err);
  }
}

function render() {
  $("count").textContent = t("rec.found", { count: found.length });
  $("results").tBodies[0].replaceChildren(
    ...found.map((r) =>
      el(
        "tr",
        { "data-recording": r.id },
        el("td", {}, fmtTime(r.started_at)),
        el("td", {}, r.agent_no || ""),
        el("td", {}, r.skill_group || ""),
        el("td", {}, r.caller || ""),
        el("td", {}, r.callee || ""),
        el("td", {}, r.duration_ms === null ? "" : fmtDuration(r.duration_ms / 1000)),
        el(
          "td",
          {},
          el("button", { type: "button", "aria-label": `${t("rec.play")} ${fmtTime(r.started_at)} ${r.caller || ""}`, onclick: () => play(r) }, t("rec.play")),
        ),
      ),
    ),
  );
}

async function play(rec) {
  try {
    const link = await api("POST", tenantPath(who, `/recordings/${encodeURIComponent(rec.id)}/link`), { query: { ttl_seconds: 600 } });
    const player = $("player");
    player.src = link.url;
    $("now-playing").textContent = `${fmtTime(rec.started_at)} · ${rec.caller || ""} → ${rec.callee || ""} · ${rec.agent_no || ""}`;
    player.dataset.recording = rec.id;
    await player.play().catch(() => {});
    player.focus();
    announce(`${t("rec.play")}: ${rec.id}`, "ok");
  } catch (err) {
    announceError(err);
  }
}

startPage(render);
if (who) {
  $("search-form").addEventListener("submit", search);
  search();
}
