// What every page shares: the header (navigation, language switch, session), a status line
// read out by screen readers, a tiny DOM builder and formatting helpers.

import { clearSession, session } from "./api.js";
import { LANGUAGES, applyI18n, language, setLanguage, t } from "./i18n.js";

const NAV = [
  ["/", "nav.home"],
  ["/seat", "nav.seat"],
  ["/wallboard", "nav.wallboard"],
  ["/flows", "nav.flows"],
  ["/recordings", "nav.recordings"],
  ["/reports", "nav.reports"],
  ["/docs", "nav.api"],
];

/** Build an element: el("button", {class: "x", onclick: f}, "text", child, …). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") node.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(node.dataset, v);
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Say something in the page's status line (role=status, or role=alert for errors). */
export function announce(message, kind = "info") {
  const box = document.getElementById("status");
  if (!box) return;
  box.textContent = message;
  box.className = `status status-${kind}`;
  box.setAttribute("role", kind === "error" ? "alert" : "status");
}

/** Announce an API failure with the server's own words and, if any, the fields it names. */
export function announceError(err) {
  const fields = err.fieldErrors?.length
    ? " — " + err.fieldErrors.map((f) => `${f.field}: ${f.message}`).join("; ")
    : "";
  announce(`${t("err.generic")}: ${err.message}${fields}`, "error");
}

/** Seconds → "m:ss" or "h:mm:ss". */
export function fmtDuration(totalSeconds) {
  const s = Math.max(0, Math.floor(totalSeconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${sec}` : `${m}:${sec}`;
}

export function fmtTime(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString(language() === "zh" ? "zh-CN" : "en-GB");
}

export function since(iso) {
  return iso ? (Date.now() - new Date(iso).getTime()) / 1000 : 0;
}

function renderHeader() {
  const header = document.getElementById("app-header");
  if (!header) return;
  const who = session();
  const here = location.pathname;
  const select = el(
    "select",
    { id: "lang-select", onchange: (e) => setLanguage(e.target.value) },
    Object.entries(LANGUAGES).map(([code, name]) =>
      el("option", { value: code, selected: code === language() }, name),
    ),
  );
  header.replaceChildren(
    el("span", { class: "brand" }, "ccbridge"),
    el(
      "nav",
      { "aria-label": "Main" },
      el(
        "ul",
        {},
        NAV.map(([href, key]) =>
          el("li", {}, el("a", { href, "aria-current": href === here ? "page" : null }, t(key))),
        ),
      ),
    ),
    el(
      "div",
      { class: "header-tools" },
      el("label", { for: "lang-select" }, t("lang.label")),
      select,
      el(
        "span",
        { class: "who" },
        who
          ? t("session.as", { who: who.agentNo || who.subject || who.role, tenant: who.tenant })
          : t("session.none"),
      ),
      who
        ? el(
            "button",
            {
              type: "button",
              onclick: () => {
                clearSession();
                location.href = "/";
              },
            },
            t("session.signout"),
          )
        : null,
    ),
  );
}

/** Set the page up: header, translations, and re-render both on a language switch. */
export function startPage(onLanguage = () => {}) {
  renderHeader();
  applyI18n(document);
  document.addEventListener("ccb:language", () => {
    renderHeader();
    onLanguage();
  });
}

/** The session, or a pointer to the sign-in page (and null). */
export function requireSession() {
  const who = session();
  if (!who) {
    announce(t("err.need_signin"), "error");
    const main = document.getElementById("main");
    main?.prepend(el("p", {}, el("a", { href: "/" }, t("signin.heading"))));
  }
  return who;
}

/** /api/v1/tenants/{tenant}… for the signed-in tenant. */
export function tenantPath(who, rest) {
  return `/api/v1/tenants/${encodeURIComponent(who.tenant)}${rest}`;
}
