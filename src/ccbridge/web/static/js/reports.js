// `/reports`: run a report over the tenant's dates, view it as a table, download CSV or XLSX
// (the same endpoint with ?format=, fetched with the user's credential).

import { api, download } from "./api.js";
import { t } from "./i18n.js";
import { announce, announceError, el, requireSession, startPage, tenantPath } from "./shell.js";

const $ = (id) => document.getElementById(id);
const who = requireSession();
let last = null;

function params() {
  const f = $("report-form");
  return {
    report: f.report.value,
    query: { from: f.from.value, to: f.to.value, interval: f.interval.value, group_by: f.group_by.value },
  };
}

async function run(event) {
  event?.preventDefault();
  const { report, query } = params();
  try {
    last = await api("GET", tenantPath(who, `/reports/${report}`), { query });
    render();
  } catch (err) {
    announceError(err);
  }
}

function render() {
  if (!last) return;
  $("table-h").textContent = `${last.title} (${last.from} – ${last.to}, ${last.interval}, ${last.timezone})`;
  $("rows").textContent = t("rep.rows", { count: last.rows.length });
  $("report").tHead.replaceChildren(el("tr", {}, last.columns.map((c) => el("th", { scope: "col" }, c.heading))));
  $("report").tBodies[0].replaceChildren(
    ...last.rows.map((row) => el("tr", {}, last.columns.map((c) => el("td", {}, format(row[c.key]))))),
  );
}

function format(value) {
  if (value === null || value === undefined) return "";
  if (typeof value === "number" && !Number.isInteger(value)) return value.toFixed(2);
  return String(value);
}

async function save(fmt) {
  const { report, query } = params();
  try {
    await download(tenantPath(who, `/reports/${report}`), { ...query, format: fmt }, `${report}_${query.from}_${query.to}.${fmt}`);
    announce(`${t(fmt === "csv" ? "rep.csv" : "rep.xlsx")}: ${report}`, "ok");
  } catch (err) {
    announceError(err);
  }
}

startPage(render);
if (who) {
  const today = new Date().toISOString().slice(0, 10);
  $("r-from").value = today;
  $("r-to").value = today;
  $("report-form").addEventListener("submit", run);
  $("btn-csv").onclick = () => save("csv");
  $("btn-xlsx").onclick = () => save("xlsx");
}
