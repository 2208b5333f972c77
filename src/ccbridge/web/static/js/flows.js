// `/flows`: the IVR flow editor. Reads and writes drafts, validates, simulates, diffs and
// publishes through the tenant's IVR endpoints; node forms come from the flow JSON Schema.

import { ApiError, api } from "./api.js";
import { drawGraph } from "./flow_graph.js";
import { t } from "./i18n.js";
import { nodeModels, renderNodeForm } from "./schema_form.js";
import { announce, announceError, el, fmtTime, requireSession, startPage, tenantPath } from "./shell.js";

const $ = (id) => document.getElementById(id);
const who = requireSession();
const state = {
  models: {},
  flowId: null,
  version: null,
  doc: null,
  dirty: false,
  selected: null,
  nodeErrors: {},
  fieldErrors: {},
  otherErrors: [],
  path: [],
  readForm: null,
};

const ivr = (rest) => tenantPath(who, `/ivr${rest}`);

function template(id) {
  return {
    format: "ccbridge-ivr/1",
    name: id,
    start: "welcome",
    language: "zh",
    nodes: {
      welcome: { type: "menu", prompt: "sys:welcome", options: { 1: { next: "sales", label: "销售" } }, on_fail: "sales" },
      sales: { type: "queue", skill_group: "sales" },
    },
  };
}

/** Spread faults by JSON path ($.nodes.<id>.<field>…) over nodes and their fields. */
function setErrors(errors) {
  state.nodeErrors = {};
  state.fieldErrors = {};
  state.otherErrors = [];
  for (const e of errors) {
    const path = e.path ?? e.field ?? "";
    const parts = path.replace(/^\$\.?/, "").split(".");
    const message = `${e.message}${e.code ? ` (${e.code})` : ""}`;
    if (parts[0] === "nodes" && parts[1] && state.doc?.nodes?.[parts[1]] !== undefined) {
      (state.nodeErrors[parts[1]] ||= []).push(`${parts.slice(2).join(".") || parts[1]}: ${message}`);
      if (parts[2]) ((state.fieldErrors[parts[1]] ||= {})[parts[2]] ||= []).push(message);
    } else {
      state.otherErrors.push(`${path}: ${message}`);
    }
  }
}

function nodeLabel(id, node) {
  const errs = state.nodeErrors[id] || [];
  const start = id === state.doc?.start ? ` (${t("flows.start")})` : "";
  return `${node?.type || "?"}${start}${errs.length ? `. ${t("common.error_on", { where: id })}: ${errs.join("; ")}` : ""}`;
}

function render() {
  const doc = state.doc;
  const has = Boolean(doc);
  for (const id of ["btn-validate", "btn-save", "btn-simulate", "btn-publish", "btn-add", "btn-json"]) $(id).disabled = !has;
  if (!has) return;
  if (state.selected && !(state.selected in doc.nodes)) state.selected = null;
  drawGraph($("graph"), doc, {
    title: `${t("flows.graph")}: ${doc.name || state.flowId}`,
    selected: state.selected,
    errors: state.nodeErrors,
    path: state.path,
    onSelect: select,
    label: nodeLabel,
  });
  $("node-list").replaceChildren(
    ...Object.entries(doc.nodes).map(([id, node]) =>
      el(
        "li",
        {},
        el(
        "button",
        {
          type: "button",
          class: state.nodeErrors[id]?.length ? "secondary invalid" : "secondary",
          "aria-pressed": String(id === state.selected),
          "data-node": id,
          onclick: () => select(id),
        },
        `${id} · ${node.type}${state.nodeErrors[id]?.length ? ` (!${state.nodeErrors[id].length})` : ""}`,
        ),
      ),
    ),
  );
  const all = [...state.otherErrors, ...Object.entries(state.nodeErrors).flatMap(([id, list]) => list.map((m) => `${id}: ${m}`))];
  $("errors").replaceChildren(...all.map((m) => el("li", { class: "node-errors" }, m)));
  renderForm();
  if (document.activeElement !== $("doc-json")) $("doc-json").value = JSON.stringify(doc, null, 2);
}

function renderForm() {
  const id = state.selected;
  const form = $("node-form");
  const errBox = $("node-errors");
  if (!id) {
    $("form-h").textContent = t("flows.nodes");
    form.replaceChildren();
    errBox.hidden = true;
    state.readForm = null;
    return;
  }
  const node = state.doc.nodes[id];
  $("form-h").textContent = `${t("flows.node", { id })} · ${node.type}`;
  const errs = state.nodeErrors[id] || [];
  errBox.hidden = !errs.length;
  errBox.replaceChildren(...errs.map((m) => el("div", {}, m)));
  const model = state.models[node.type];
  if (!model) {
    form.replaceChildren(el("p", {}, `${node.type}?`));
    state.readForm = null;
    return;
  }
  state.readForm = renderNodeForm(form, id, node, model, state.fieldErrors[id] || {});
  form.append(
    el(
      "div",
      { class: "row" },
      el("button", { type: "submit", id: "btn-apply" }, t("flows.apply")),
      el("button", { type: "button", class: "danger", onclick: () => removeNode(id) }, t("flows.delete_node")),
    ),
  );
}

function select(id) {
  state.selected = id;
  render();
  $("node-form").querySelector("input:not([readonly]), select, textarea")?.focus();
}

function applyForm(event) {
  event.preventDefault();
  if (!state.readForm) return;
  try {
    state.doc.nodes[state.selected] = state.readForm();
  } catch (err) {
    announce(t("flows.bad_json", { error: err.message }), "error");
    return;
  }
  state.dirty = true;
  state.path = [];
  render();
  announce(`${t("flows.apply")}: ${state.selected}`, "ok");
}

function removeNode(id) {
  delete state.doc.nodes[id];
  state.selected = null;
  state.dirty = true;
  render();
}

function addNode() {
  const id = $("add-id").value.trim();
  const type = $("add-type").value;
  if (!id || id in state.doc.nodes) {
    $("add-id").setAttribute("aria-invalid", "true");
    $("add-id").focus();
    return;
  }
  $("add-id").removeAttribute("aria-invalid");
  state.doc.nodes[id] = { type };
  state.dirty = true;
  select(id);
}

async function loadList(pick) {
  const flows = await api("GET", ivr("/flows"));
  $("flow-select").replaceChildren(...flows.map((f) => el("option", { value: f.flow_id, selected: f.flow_id === pick }, `${f.flow_id} — ${f.name}`)));
  return flows;
}

async function open(flowId) {
  try {
    const flow = await api("GET", ivr(`/flows/${encodeURIComponent(flowId)}`));
    state.flowId = flow.flow_id;
    state.version = flow.draft_version;
    state.doc = flow.draft;
    state.dirty = false;
    state.selected = null;
    state.path = [];
    setErrors([]);
    history.replaceState(null, "", `/flows?flow=${encodeURIComponent(flowId)}`);
    render();
    loadRevisions();
  } catch (err) {
    announceError(err);
  }
}

async function createFlow() {
  const id = $("new-flow-id").value.trim();
  if (!id) {
    $("new-flow-id").focus();
    return;
  }
  try {
    await api("PUT", ivr(`/flows/${encodeURIComponent(id)}`), { body: template(id) });
    await loadList(id);
    await open(id);
  } catch (err) {
    if (err instanceof ApiError) announceError(err);
  }
}

async function validate() {
  try {
    const report = await api("POST", ivr("/validate"), { body: state.doc });
    setErrors(report.errors);
    render();
    if (report.valid) announce(t("flows.valid", { count: report.node_count }), "ok");
    else announce(t("flows.invalid", { count: report.errors.length }), "error");
    return report.valid;
  } catch (err) {
    showRefusal(err);
    return false;
  }
}

function showRefusal(err) {
  if (err instanceof ApiError && Array.isArray(err.problem.errors)) {
    setErrors(err.problem.errors);
    render();
    announce(t("flows.invalid", { count: err.problem.errors.length }), "error");
  } else announceError(err);
}

async function save() {
  try {
    const flow = await api("PUT", ivr(`/flows/${encodeURIComponent(state.flowId)}`), { body: state.doc, query: { draft_version: state.version } });
    state.version = flow.draft_version;
    state.dirty = false;
    setErrors([]);
    render();
    announce(t("flows.saved", { version: flow.draft_version }), "ok");
    return true;
  } catch (err) {
    showRefusal(err);
    return false;
  }
}

async function simulate() {
  if (state.dirty && !(await save())) return;
  const digits = $("digits").value.split(/[\s,]+/).filter(Boolean);
  try {
    const sim = await api("POST", ivr(`/flows/${encodeURIComponent(state.flowId)}/simulate`), { body: { digits } });
    state.path = sim.path;
    render();
    const text = t("flows.sim_result", { route: sim.route, target: sim.target, reason: sim.reason, path: sim.path.join(" → ") });
    $("sim-result").textContent = text;
    $("sim-result").dataset.route = sim.route;
    $("sim-result").dataset.target = sim.target;
    announce(text, "ok");
  } catch (err) {
    showRefusal(err);
  }
}

async function publish() {
  if (state.dirty && !(await save())) return;
  const at = $("pub-at").value;
  const body = { message: $("pub-message").value.trim() || "console", effective_at: at ? new Date(at).toISOString() : null };
  try {
    const rev = await api("POST", ivr(`/flows/${encodeURIComponent(state.flowId)}/publish`), { body });
    announce(t("flows.published", { revision: rev.revision, at: fmtTime(rev.effective_at) }), "ok");
    loadRevisions();
  } catch (err) {
    showRefusal(err);
  }
}

async function loadRevisions() {
  try {
    const revs = await api("GET", ivr(`/flows/${encodeURIComponent(state.flowId)}/revisions`));
    $("revisions").replaceChildren(
      ...revs.map((r) =>
        el(
          "li",
          { "data-revision": r.revision },
          `#${r.revision} · ${r.message} · ${r.author} · ${fmtTime(r.effective_at)} `,
          el("button", { type: "button", class: "secondary", onclick: () => diff(r.revision) }, `${t("flows.diff")} (#${r.revision})`),
        ),
      ),
    );
  } catch (err) {
    announceError(err);
  }
}

async function diff(revision) {
  try {
    const d = await api("GET", ivr(`/flows/${encodeURIComponent(state.flowId)}/diff`), { query: { from: revision } });
    const items = d.nodes.map((n) => el("li", {}, `${n.change} ${n.node}${n.fields.length ? `: ${n.fields.join(", ")}` : ""}`));
    for (const s of d.settings) items.push(el("li", {}, `settings: ${s}`));
    $("diff").replaceChildren(...(items.length ? items : [el("li", {}, t("flows.diff_none"))]));
  } catch (err) {
    announceError(err);
  }
}

/** Play a stored prompt as callers hear it (8 kHz mono WAV), fetched with the user's token. */
async function playStored(promptId) {
  try {
    const resp = await api("GET", ivr(`/prompts/${encodeURIComponent(promptId)}/file`), { raw: true, headers: { Accept: "audio/wav" } });
    const player = $("prompt-player");
    if (player.dataset.url) URL.revokeObjectURL(player.dataset.url);
    player.dataset.url = URL.createObjectURL(await resp.blob());
    player.dataset.playing = promptId;
    player.src = player.dataset.url;
    await player.play().catch(() => {});
  } catch (err) {
    announceError(err);
  }
}

async function loadPrompts() {
  try {
    const prompts = await api("GET", ivr("/prompts"));
    $("prompts").replaceChildren(
      ...prompts.map((p) =>
        el(
          "li",
          {},
          `${p.prompt_id} · ${(p.duration_ms / 1000).toFixed(1)} s · ${p.created_by} `,
          el("button", { type: "button", class: "secondary", "aria-label": t("flows.play_prompt", { id: p.prompt_id }), dataset: { prompt: p.prompt_id }, onclick: () => playStored(p.prompt_id) }, t("flows.play")),
        ),
      ),
    );
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 403)) announceError(err);
  }
}

async function upload() {
  const file = $("prompt-file").files[0];
  const id = $("prompt-id").value.trim();
  if (!file || !id) {
    (id ? $("prompt-file") : $("prompt-id")).focus();
    return;
  }
  const form = new FormData();
  form.append("prompt_id", id);
  form.append("file", file);
  try {
    const p = await api("POST", ivr("/prompts"), { body: form });
    announce(t("flows.uploaded", { id: p.prompt_id, ms: p.duration_ms }), "ok");
    loadPrompts();
  } catch (err) {
    announceError(err);
  }
}

function applyJson() {
  try {
    state.doc = JSON.parse($("doc-json").value);
    state.dirty = true;
    render();
  } catch (err) {
    announce(t("flows.bad_json", { error: err.message }), "error");
  }
}

async function main() {
  const schema = await (await fetch("/console/ivr-flow.schema.json")).json();
  state.models = nodeModels(schema);
  $("add-type").replaceChildren(...Object.keys(state.models).map((type) => el("option", { value: type }, type)));
  $("btn-open").onclick = () => open($("flow-select").value);
  $("btn-new").onclick = createFlow;
  $("btn-validate").onclick = validate;
  $("btn-save").onclick = save;
  $("btn-simulate").onclick = simulate;
  $("btn-publish").onclick = publish;
  $("btn-add").onclick = addNode;
  $("btn-upload").onclick = upload;
  $("btn-json").onclick = applyJson;
  $("node-form").addEventListener("submit", applyForm);
  $("prompt-file").addEventListener("change", () => {
    const file = $("prompt-file").files[0];
    if (file) $("prompt-player").src = URL.createObjectURL(file);
  });
  render();
  try {
    const wanted = new URLSearchParams(location.search).get("flow");
    const flows = await loadList(wanted);
    const first = wanted || flows[0]?.flow_id;
    if (first) await open(first);
  } catch (err) {
    announceError(err);
  }
  loadPrompts();
}

startPage(render);
if (who) main();
