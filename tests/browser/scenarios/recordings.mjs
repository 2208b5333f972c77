// A supervisor finds a recording by its caller and plays it; the player fetches the audio
// through the signed link with HTTP Range requests (206 Partial Content).

import { adminApi, axeCheck, run, screenshot, signIn, step, until } from "../lib.mjs";

await run("recordings", async ({ page }) => {
  step("wait for a finished recording of tenant t1 (the simulator's calls are recorded)");
  const rec = await until(
    "a recording with status ok",
    async () => {
      const found = await adminApi("GET", "/api/v1/tenants/t1/recordings?limit=50");
      return found.status === 200 ? found.body.items.find((r) => r.status === "ok" && r.caller) : null;
    },
    { timeoutMs: 150000, everyMs: 1000 },
  );
  step(`recording ${rec.id}: caller ${rec.caller}, ${rec.duration_ms} ms`);
  const ranged = [];
  page.on("response", (resp) => {
    if (resp.url().includes(`/recordings/${rec.id}/file`)) ranged.push({ status: resp.status(), range: resp.request().headers().range || "" });
  });

  step("sign in as a supervisor and search by the caller");
  await signIn(page, { as: "supervisor", subject: "lead" });
  await page.waitForURL("**/wallboard");
  await page.goto("/recordings");
  await page.getByLabel("主叫 Caller").fill(rec.caller);
  await page.getByRole("button", { name: "Search", exact: true }).click();
  const row = page.locator(`#results tr[data-recording="${rec.id}"]`);
  await row.waitFor();
  await axeCheck(page, "recordings");

  step("play it");
  await row.getByRole("button").click();
  const player = page.locator("#player");
  await until("the audio to play", async () => player.evaluate((a) => a.readyState >= 2 && a.duration > 0), { timeoutMs: 30000 });
  const seconds = await player.evaluate((a) => a.duration);
  step(`playing: ${seconds.toFixed(1)} s of audio; file responses ${JSON.stringify(ranged)}`);
  if (Math.abs(seconds * 1000 - rec.duration_ms) > 1500) throw new Error(`the player reports ${seconds} s, the index ${rec.duration_ms} ms`);
  if (!ranged.some((r) => r.status === 206 && r.range.startsWith("bytes="))) throw new Error(`no Range request answered 206: ${JSON.stringify(ranged)}`);
  await screenshot(page, "recordings");
});
