// Shared by the browser scenarios: Debian's Chromium through playwright-core (never a
// downloaded browser), sign-in, the axe-core check, screenshots and admin API calls.

import { readFileSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

export const BASE = process.env.CCB_BASE_URL || "http://127.0.0.1:8000";
export const ADMIN_KEY = process.env.CCB_ADMIN_KEY || "";
export const SHOTS = process.env.CCB_SCREENSHOTS || join(here, "..", "..", "docs", "screenshots");
const FAILURES = process.env.CCB_ARTIFACTS || tmpdir();
const CHROMIUM = process.env.CCB_CHROMIUM || "/usr/bin/chromium";
const AXE_SOURCE = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

export function step(message) {
  console.log(`[${new Date().toISOString()}] ${message}`);
}

/** Chromium headless; the context may inject axe-core despite the pages' strict CSP. */
export async function launch({ lang = "en" } = {}) {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-dev-shm-usage", "--autoplay-policy=no-user-gesture-required"],
  });
  const context = await browser.newContext({
    baseURL: BASE,
    bypassCSP: true,
    viewport: { width: 1360, height: 900 },
    locale: lang === "zh" ? "zh-CN" : "en-GB",
  });
  await context.addInitScript((l) => localStorage.getItem("ccbridge.lang") || localStorage.setItem("ccbridge.lang", l), lang);
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (err) => problems.push(`page error: ${err.message}`));
  page.on("console", (msg) => {
    if (msg.type() === "error" && !/Failed to load resource/.test(msg.text())) problems.push(`console: ${msg.text()}`);
  });
  page.setDefaultTimeout(20000);
  return { browser, context, page, problems };
}

/** The admin API with the dev key (scenario set-up only; the pages use their own token). */
export async function adminApi(method, path, body) {
  const resp = await fetch(BASE + path, {
    method,
    headers: { Authorization: `Bearer ${ADMIN_KEY}`, "Content-Type": "application/json", "Idempotency-Key": crypto.randomUUID() },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await resp.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: resp.status, body: json };
}

/** Sign in through `/` like a person: the admin key issues this person's own token. */
export async function signIn(page, { as, agentNo = "", subject = "", tenant = "t1" }) {
  await page.goto("/");
  await page.getByLabel(/API key or token/).fill(ADMIN_KEY);
  await page.getByLabel(/^Tenant$/).fill(tenant);
  await page.getByLabel(/Sign in as/).selectOption(as);
  if (as !== "key") await page.getByLabel(/Your login name/).fill(subject || agentNo || as);
  if (as === "agent") await page.getByLabel(/agent number/).fill(agentNo);
  await page.getByRole("button", { name: "Sign in" }).click();
}

/** axe-core on the current page: fail on any serious or critical violation. */
export async function axeCheck(page, name) {
  await page.addScriptTag({ content: AXE_SOURCE });
  const result = await page.evaluate(async () =>
    // eslint-disable-next-line no-undef
    axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"] } }),
  );
  const bad = result.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  for (const v of result.violations) step(`axe ${name}: ${v.impact} ${v.id} (${v.nodes.length} nodes)`);
  if (bad.length) {
    const detail = bad.map((v) => `${v.id} [${v.impact}]: ${v.help} at ${v.nodes.map((n) => n.target.join(" ")).slice(0, 3).join(", ")}`);
    throw new Error(`axe found serious violations on ${name}:\n${detail.join("\n")}`);
  }
  step(`axe ${name}: no serious or critical violations (${result.passes.length} rules passed)`);
}

export async function screenshot(page, name, dir = SHOTS) {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  step(`screenshot ${path}`);
}

/** Poll *check* until it returns a truthy value (a hang guard, never a speed bound). */
export async function until(what, check, { timeoutMs = 60000, everyMs = 250 } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Run a scenario: exit 0 when it passes, 1 with the reason (and page errors) when not. */
export async function run(name, body) {
  const session = await launch({ lang: process.env.CCB_LANG || "en" });
  let failed = null;
  try {
    await body(session);
    if (session.problems.length) throw new Error(`the page logged errors:\n${session.problems.join("\n")}`);
  } catch (err) {
    failed = err;
    try {
      await screenshot(session.page, `${name}-failure`, FAILURES);
    } catch {
      /* best effort */
    }
  } finally {
    await session.browser.close();
  }
  if (failed) {
    console.error(`FAILED ${name}: ${failed.stack || failed}`);
    process.exit(1);
  }
  step(`PASSED ${name}`);
}
