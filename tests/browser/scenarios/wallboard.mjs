// A supervisor watches the wallboard: it changes on its own (pushed over SSE, no reload) after
// a call, and a break-too-long alert appears when an agent's break runs over. How long after the
// call's step the frame was generated (the server's own clocks) is printed, not asserted: a
// test asserts no wall-clock time, so a busy machine cannot fail it (docs/console.md has the
// measured figures against the 1 s goal).

import { adminApi, axeCheck, run, screenshot, signIn, step, until } from "../lib.mjs";

const AGENT = "1102";

async function waitingFigures(page) {
  return page.$$eval("#groups tbody tr", (rows) => rows.map((r) => `${r.dataset.group}:${r.querySelector('[data-field="calls_waiting"]').textContent}:${r.querySelector('[data-field="offered_today"]').textContent}`).join(","));
}

await run("wallboard", async ({ page }) => {
  step("sign in as a supervisor");
  await signIn(page, { as: "supervisor", subject: "lead" });
  await page.waitForURL("**/wallboard");
  await page.locator("#groups tbody tr").first().waitFor();
  await axeCheck(page, "wallboard");

  step("wait for the next simulated call to change the queue figures");
  const before = await waitingFigures(page);
  await until("a queue figure to change", async () => (await waitingFigures(page)) !== before, { timeoutMs: 90000, everyMs: 50 });
  const shownAt = new Date(await page.locator("#wb-updated").getAttribute("data-generated-at"));
  const facts = [];
  for (let after = "0"; ; ) {
    const page_ = await adminApi("GET", `/api/v1/tenants/t1/events?after=${after}&limit=1000&type=call.queued&type=call.ended&type=call.abandoned&type=call.answered`);
    facts.push(...page_.body.items.map((e) => new Date(e.occurred_at)).filter((d) => d <= shownAt));
    if (!page_.body.items.length || page_.body.next_after === after) break;
    after = page_.body.next_after;
  }
  const latest = new Date(Math.max(...facts.map((d) => d.getTime())));
  const lag = (shownAt - latest) / 1000;
  step(`figures ${before} → ${await waitingFigures(page)}; the frame was generated ${lag.toFixed(3)} s after the call's step`);
  if (!(lag >= 0)) throw new Error(`the changed frame predates the call's step (lag ${lag} s)`);

  step("an agent's break runs over a 1-second break_too_long rule");
  const rules = await adminApi("PUT", "/api/v1/tenants/t1/floor-rules", { rules: { break_too_long: { enabled: true, threshold: 1, severity: "warning" } } });
  if (rules.status !== 200) throw new Error(`floor rules: ${rules.status} ${JSON.stringify(rules.body)}`);
  const signedIn = await adminApi("POST", `/api/v1/tenants/t1/seats/${AGENT}/sign-in`, { ready: false, reason: "培训" });
  if (![200, 409].includes(signedIn.status)) throw new Error(`sign-in: ${signedIn.status} ${JSON.stringify(signedIn.body)}`);
  const onBreak = await adminApi("POST", `/api/v1/tenants/t1/seats/${AGENT}/state`, { action: "break" });
  if (onBreak.status !== 200) throw new Error(`break: ${onBreak.status} ${JSON.stringify(onBreak.body)}`);
  const alert = page.locator(`#alerts li[data-rule="break_too_long"][data-agent="${AGENT}"]`);
  await alert.waitFor({ timeout: 30000 });
  step(`alert shown: ${await alert.textContent()}`);
  await page.locator(`#seats tr[data-agent="${AGENT}"] [data-state="break"]`).waitFor();

  step("listen in on 1101's call from the supervisor's own seat (1102)");
  await adminApi("POST", "/api/v1/tenants/t1/endpoints", { technology: "Local", name: "soft1101", description: "soft phone" });
  await adminApi("POST", "/api/v1/tenants/t1/seats/1101/sign-in", { endpoint: "soft1101" });
  const listen = page.getByRole("button", { name: "Listen 1101" });
  await listen.waitFor({ timeout: 90000 });
  await page.getByLabel(/Your own 工号/).fill(AGENT);
  await listen.click();
  await until("the spy to start", async () => /Listen started on 1101/.test(await page.locator("#status").textContent()));
  await screenshot(page, "wallboard");
  await adminApi("POST", `/api/v1/tenants/t1/seats/${AGENT}/state`, { action: "ready" });
});
