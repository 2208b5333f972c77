// Node forms drawn from the flow's JSON Schema: one labelled control per property of the node
// type's model (text, number, checkbox, select), JSON for nested objects and lists.

import { t } from "./i18n.js";
import { el } from "./shell.js";

/** The node types the schema knows: {type: model schema}. */
export function nodeModels(schema) {
  const mapping = schema.properties.nodes.additionalProperties.discriminator.mapping;
  const models = {};
  for (const [type, ref] of Object.entries(mapping)) models[type] = schema.$defs[ref.split("/").pop()];
  return models;
}

/** Collapse anyOf [X, null] to X; report whether null is allowed. */
function simplify(prop) {
  if (!prop.anyOf) return { base: prop, nullable: false };
  const options = prop.anyOf.filter((p) => p.type !== "null");
  const nullable = options.length !== prop.anyOf.length;
  if (options.length === 1) return { base: { ...options[0], title: prop.title, description: prop.description, default: prop.default }, nullable };
  // A prompt: a string or a per-language object; edit as text when it is a string.
  const str = options.find((p) => p.type === "string");
  return { base: { ...(str || options[0]), title: prop.title, description: prop.description, default: prop.default, mixed: true }, nullable };
}

function kindOf(base, value) {
  if (base.const !== undefined) return "const";
  if (base.enum) return "enum";
  if (base.mixed && value !== undefined && value !== null && typeof value !== "string") return "json";
  if (base.type === "string") return "string";
  if (base.type === "integer" || base.type === "number") return "number";
  if (base.type === "boolean") return "boolean";
  return "json";
}

/**
 * Render *node* of *model* into *form*; errors {field: [messages]} mark fields. Returns
 * read(): the edited node (unknown keys kept), throwing on bad JSON in a JSON field.
 */
export function renderNodeForm(form, nodeId, node, model, errors) {
  const required = new Set(model.required || []);
  const fields = [];
  form.replaceChildren();
  for (const [name, prop] of Object.entries(model.properties || {})) {
    const { base, nullable } = simplify(prop);
    const value = node[name];
    const kind = kindOf(base, value);
    const id = `f-${nodeId}-${name}`.replace(/[^A-Za-z0-9_-]/g, "_");
    const hintId = `${id}-hint`;
    const errId = `${id}-err`;
    const fieldErrors = errors[name] || [];
    const label = el("label", { for: id }, `${base.title || name}${required.has(name) ? " *" : ""}${kind === "json" ? ` ${t("flows.form_json")}` : ""}`);
    let control;
    if (kind === "const") {
      control = el("input", { id, value: base.const, readonly: true });
    } else if (kind === "enum") {
      control = el("select", { id }, (nullable || !required.has(name) ? [""] : []).concat(base.enum).map((v) => el("option", { value: v, selected: v === value }, v)));
    } else if (kind === "boolean") {
      control = el("input", { id, type: "checkbox", checked: value ?? base.default ?? false });
    } else if (kind === "number") {
      control = el("input", { id, type: "number", min: base.minimum, max: base.maximum, value: value ?? "", placeholder: base.default ?? "" });
    } else if (kind === "string") {
      control = el("input", { id, value: value ?? "", maxlength: base.maxLength, placeholder: base.default ?? "" });
    } else {
      control = el("textarea", { id, rows: 4, spellcheck: "false" }, value === undefined ? "" : JSON.stringify(value, null, 2));
    }
    control.name = name;
    const describedBy = [];
    if (base.description) describedBy.push(hintId);
    if (fieldErrors.length) {
      describedBy.push(errId);
      control.setAttribute("aria-invalid", "true");
    }
    if (describedBy.length) control.setAttribute("aria-describedby", describedBy.join(" "));
    if (required.has(name) && kind !== "const") control.setAttribute("aria-required", "true");
    const wrap = el(
      "div",
      { class: kind === "boolean" ? "field check" : "field", "data-field": name },
      kind === "boolean" ? [control, label] : [label, control],
      base.description ? el("small", { id: hintId, class: "muted" }, base.description.replace(/``/g, "")) : null,
      fieldErrors.length ? el("small", { id: errId, class: "node-errors" }, fieldErrors.join("; ")) : null,
    );
    form.append(wrap);
    fields.push({ name, kind, control, required: required.has(name) });
  }
  return () => {
    const out = { ...node };
    for (const f of fields) {
      if (f.kind === "const") continue;
      let v;
      if (f.kind === "boolean") v = f.control.checked;
      else if (f.kind === "number") v = f.control.value === "" ? undefined : Number(f.control.value);
      else if (f.kind === "json") v = f.control.value.trim() === "" ? undefined : JSON.parse(f.control.value);
      else v = f.control.value === "" ? undefined : f.control.value;
      if (v === undefined || (f.kind === "boolean" && v === false && node[f.name] === undefined)) delete out[f.name];
      else out[f.name] = v;
    }
    return out;
  };
}
