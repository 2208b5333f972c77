// A flow is edited in the graph editor, fails validation visibly on the node, is fixed,
// simulated with digits and published.

import { adminApi, axeCheck, run, screenshot, signIn, step, until } from "../lib.mjs";

const FLOW = "console-demo";
const DOC = {
  format: "ccbridge-ivr/1",
  name: "Console demo menu",
  start: "welcome",
  language: "zh",
  nodes: {
    welcome: { type: "menu", prompt: "sys:welcome", options: { 1: { next: "sales", label: "销售" }, 2: { next: "support", label: "售后" } }, on_fail: "sales" },
    sales: { type: "queue", skill_group: "sales" },
    support: { type: "queue", skill_group: "support" },
  },
};

/** A 1-second 440 Hz tone as a 16-bit 8 kHz mono WAV. */
function tone() {
  const rate = 8000;
  const samples = rate;
  const buf = Buffer.alloc(44 + samples * 2);
  buf.write("RIFF", 0);
  buf.writeUInt32LE(36 + samples * 2, 4);
  buf.write("WAVEfmt ", 8);
  buf.writeUInt32LE(16, 16);
  buf.writeUInt16LE(1, 20);
  buf.writeUInt16LE(1, 22);
  buf.writeUInt32LE(rate, 24);
  buf.writeUInt32LE(rate * 2, 28);
  buf.writeUInt16LE(2, 32);
  buf.writeUInt16LE(16, 34);
  buf.write("data", 36);
  buf.writeUInt32LE(samples * 2, 40);
  for (let i = 0; i < samples; i++) buf.writeInt16LE(Math.round(8000 * Math.sin((2 * Math.PI * 440 * i) / rate)), 44 + i * 2);
  return buf;
}

await run("flow-editor", async ({ page }) => {
  const created = await adminApi("PUT", `/api/v1/tenants/t1/ivr/flows/${FLOW}`, DOC);
  if (![200, 409].includes(created.status)) throw new Error(`flow: ${created.status} ${JSON.stringify(created.body)}`);

  step("sign in with the tenant's key and open the flow");
  await signIn(page, { as: "key" });
  await page.waitForURL("**/flows**");
  await page.goto(`/flows?flow=${FLOW}`);
  const support = page.locator('svg.flow-graph g[data-node="support"]');
  await support.waitFor();
  await axeCheck(page, "flow editor");

  step("edit node support: a skill group the tenant does not have");
  await support.focus();
  await page.keyboard.press("Enter");
  const group = page.getByLabel(/^Skill Group/);
  await group.fill("nosuchgroup");
  await page.getByRole("button", { name: "Apply", exact: true }).click();
  await page.getByRole("button", { name: "Validate" }).first().click();
  await until("the node to be marked invalid", async () => /invalid/.test(await support.getAttribute("class")));
  const nodeErrors = await page.locator("#node-errors").textContent();
  if (!/unknown_skill_group/.test(nodeErrors)) throw new Error(`node errors: ${nodeErrors}`);
  if ((await group.getAttribute("aria-invalid")) !== "true") throw new Error("the field is not marked invalid");
  step(`shown on the node: ${nodeErrors.trim()}`);
  await screenshot(page, "flow-editor-invalid");
  await axeCheck(page, "flow editor with a fault");

  step("fix it, validate, simulate key 2");
  await page.getByLabel(/^Skill Group/).fill("support");
  await page.getByRole("button", { name: "Apply", exact: true }).click();
  await page.getByRole("button", { name: "Validate" }).first().click();
  await until("the flow to be valid", async () => /The flow is valid/.test(await page.locator("#status").textContent()));
  if (/invalid/.test(await support.getAttribute("class"))) throw new Error("support is still marked invalid");
  await page.getByLabel(/Digits the caller presses/).fill("2");
  await page.getByRole("button", { name: "Simulate" }).click();
  await until("the simulation", async () => (await page.locator("#sim-result").textContent()).includes("→"));
  const sim = await page.locator("#sim-result").textContent();
  step(`simulated: ${sim}`);
  if (!/welcome → support/.test(sim)) throw new Error(`unexpected path: ${sim}`);
  if (!/on-path/.test(await support.getAttribute("class"))) throw new Error("the path is not drawn on the graph");

  step("publish now");
  await page.getByLabel("Change note").fill("售后走 support 组");
  await page.getByRole("button", { name: "Publish", exact: true }).click();
  await until("the publication", async () => /Published revision/.test(await page.locator("#status").textContent()));
  await page.locator("#revisions li").first().waitFor();
  step("publish again on a schedule: tomorrow 09:00");
  const tomorrow = new Date(Date.now() + 86400000);
  const local = `${tomorrow.getFullYear()}-${String(tomorrow.getMonth() + 1).padStart(2, "0")}-${String(tomorrow.getDate()).padStart(2, "0")}T09:00`;
  await page.getByLabel(/Effective at/).fill(local);
  await page.getByLabel("Change note").fill("明早生效");
  await page.getByRole("button", { name: "Publish", exact: true }).click();
  await until("the scheduled revision", async () => (await page.locator("#revisions li").count()) >= 2);
  const scheduled = await adminApi("GET", `/api/v1/tenants/t1/ivr/flows/${FLOW}/revisions`);
  const later = scheduled.body.find((r) => r.message === "明早生效");
  if (!later || later.activated_at !== null || new Date(later.effective_at) <= new Date()) throw new Error(`scheduled revision: ${JSON.stringify(later)}`);
  step(`scheduled revision ${later.revision} effective ${later.effective_at}`);
  await page.locator("#revisions li button").first().click();
  await page.locator("#diff li").first().waitFor();
  if (process.env.CCB_HAVE_SOX === "1") {
    step("upload a prompt (a 1 s tone) and play it back in the page");
    const promptId = `console_beep_${Date.now().toString(36)}`; // a new id each run: ids are unique
    await page.getByLabel("Prompt id").fill(promptId);
    await page.getByLabel("Audio file").setInputFiles({ name: "beep.wav", mimeType: "audio/wav", buffer: tone() });
    if (!(await page.locator("#prompt-player").getAttribute("src"))?.startsWith("blob:")) throw new Error("the chosen file is not in the player");
    await page.getByRole("button", { name: "Upload" }).click();
    await until("the upload", async () => (await page.locator("#status").textContent()).includes(`Prompt ${promptId} uploaded`));
    await page.locator("#prompts li", { hasText: promptId }).waitFor();
    step("play the stored prompt back (the converted WAV callers hear, fetched with the token)");
    await page.getByRole("button", { name: `Play prompt ${promptId}` }).click();
    await until("the stored prompt in the player", async () => (await page.locator("#prompt-player").getAttribute("data-playing")) === promptId);
    const stored = await page.locator("#prompt-player").evaluate(async (audio) => {
      const body = await (await fetch(audio.src)).arrayBuffer();
      return { bytes: body.byteLength, head: String.fromCharCode(...new Uint8Array(body.slice(0, 4))) };
    });
    if (stored.head !== "RIFF" || stored.bytes < 1000) throw new Error(`the stored prompt is not a WAV: ${JSON.stringify(stored)}`);
  } else {
    step("sox is not installed: prompt upload not tried");
  }
  await axeCheck(page, "flow editor after publishing");
  await screenshot(page, "flow-editor");
  const revs = await adminApi("GET", `/api/v1/tenants/t1/ivr/flows/${FLOW}/revisions`);
  if (revs.status !== 200 || revs.body.length < 2) throw new Error(`revisions: ${JSON.stringify(revs.body)}`);
  for (const r of revs.body) step(`revision ${r.revision} by ${r.author}: ${r.message}`);
});
