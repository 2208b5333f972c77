// An agent signs in, goes ready, receives a simulated call, sees its four variables, holds
// and transfers it, then files the wrap-up: all through the seat bar with its own token.

import { adminApi, axeCheck, run, screenshot, signIn, step, until } from "../lib.mjs";

const AGENT = "1101";
const DEMO_DIDS = ["4008001234", "4008001235", "+864008001234", "+864008001235"];

await run("seat-bar", async ({ page }) => {
  // The simulator answers a PJSIP member on a Local channel pair, so call control can only find
  // the agent's leg on a Local endpoint: the tenant admin claims one for the agent's soft phone.
  const phone = await adminApi("POST", "/api/v1/tenants/t1/endpoints", { technology: "Local", name: `soft${AGENT}`, description: "soft phone" });
  if (![201, 409].includes(phone.status)) throw new Error(`endpoint: ${phone.status} ${JSON.stringify(phone.body)}`);
  step("sign in as agent 1101");
  await signIn(page, { as: "agent", agentNo: AGENT, subject: "zhao" });
  await page.waitForURL("**/seat");
  const badge = page.locator("#seat-state");
  await until("the seat bar to load", async () => (await badge.getAttribute("data-state")) !== null);
  await axeCheck(page, "seat bar (signed out)");

  step("sign the seat in on the tenant's endpoint soft1101 (Local/soft1101@ccbridge-agents), ready");
  await page.getByLabel(/^Phone/).fill(`soft${AGENT}`);
  await page.getByRole("button", { name: "Sign in", exact: true }).click();
  await until("signed in", async () => (await badge.getAttribute("data-state")) !== "signed_out");
  const state = async () => badge.getAttribute("data-state");
  await until("signed in ready (or already rung)", async () => ["ready", "on_call"].includes(await state()));
  if ((await state()) === "ready") {
    step("not ready with a reason, then a break (counted, with time left), then ready again");
    await page.getByLabel("Reason").fill("培训");
    await page.getByRole("button", { name: "Not ready", exact: true }).click();
    await until("not ready", async () => (await state()) === "not_ready" || (await state()) === "on_call");
    if ((await state()) === "not_ready") {
      if (!(await page.locator("#seat-reason").textContent()).includes("培训")) throw new Error("the reason is not shown");
      await page.getByRole("button", { name: "Break", exact: true }).click();
      await until("on break", async () => (await state()) === "break");
      await until("today's break counted", async () => /Breaks today: 1 of 3/.test(await page.locator("#break-info").textContent()));
      if (!/Break time left: \d+:\d\d/.test(await page.locator("#break-info").textContent())) throw new Error("no time left shown");
      await page.getByRole("button", { name: "Ready", exact: true }).click();
    }
  }
  await until("ready or already on a call", async () => ["ready", "on_call"].includes(await state()));
  if (!(await page.locator("#dial-row").isHidden()) || !(await page.locator("#dial-not-allowed").isVisible())) {
    throw new Error("an inbound seat must not offer outbound dialling");
  }

  step("wait for a simulated call to reach the seat");
  await page.locator("#call-box").waitFor({ state: "visible", timeout: 90000 });
  await until("the call to be answered", async () => (await page.locator("#call-state").getAttribute("data-state")) === "connected", { timeoutMs: 30000 });
  const vars = {};
  for (const key of ["agent_no", "skill_group", "caller", "callee"]) vars[key] = (await page.locator(`#var-${key}`).textContent()).trim();
  step(`four variables: ${JSON.stringify(vars)}`);
  if (vars.agent_no !== AGENT) throw new Error(`工号 shows ${vars.agent_no}, not ${AGENT}`);
  if (!/^t1-(sales|support)$/.test(vars.skill_group)) throw new Error(`技能组 shows ${vars.skill_group}`);
  if (!/^\+?\d{5,}$/.test(vars.caller)) throw new Error(`主叫 shows ${vars.caller}`);
  if (!DEMO_DIDS.includes(vars.callee)) throw new Error(`被叫 shows ${vars.callee}`);
  const pop = await page.locator("#pop").textContent();
  if (!pop.includes(vars.caller) || !pop.includes(vars.callee)) throw new Error(`screen pop shows ${pop}`);
  const callId = (await page.locator("#call-id").textContent()).trim();
  await axeCheck(page, "seat bar (on a call)");

  step("hold the call");
  const hold = page.locator("#btn-hold");
  await hold.click();
  await until("the hold to be confirmed", async () => (await hold.getAttribute("aria-pressed")) === "true");
  await axeCheck(page, "seat bar (call on hold)");
  await screenshot(page, "seat-bar");
  step("resume, then transfer blind to the support group");
  await hold.click();
  await until("the resume", async () => (await hold.getAttribute("aria-pressed")) === "false");
  step("a 3-way call is refused on an inbound seat, in the server's own words");
  await page.locator("#conf-kind").selectOption("agent_no");
  await page.locator("#conf-target").fill("1102");
  await page.locator("#btn-conference").click();
  await until("the refusal", async () => (await page.locator("#status").getAttribute("role")) === "alert");
  step(`refused: ${await page.locator("#status").textContent()}`);
  await page.getByLabel("Target", { exact: true }).first().selectOption("skill_group");
  await page.locator("#transfer-target").fill("support");
  await page.locator("#transfer-mode").selectOption("blind");
  await page.locator("#btn-transfer").click();
  await until("the status line to confirm the transfer", async () => /Transfer: done/.test(await page.locator("#status").textContent()));
  const transferred = await until("the call's transfer on record", async () => {
    const found = await adminApi("GET", `/api/v1/tenants/t1/calls/${encodeURIComponent(callId)}/params`);
    return found.status === 200 && found.body.transfers.length ? found.body.transfers : null;
  }, { timeoutMs: 30000 });
  step(`transfers: ${JSON.stringify(transferred)}`);

  step("file the wrap-up");
  await page.getByLabel("Disposition").selectOption("resolved");
  await page.getByLabel("Notes").fill("查询订单");
  await page.getByRole("button", { name: "Submit wrap-up" }).click();
  await until("the wrap-up to be saved", async () => /Wrap-up saved/.test(await page.locator("#status").textContent()));
});
