// A supervisor runs today's service-level report, sees it as a table and downloads CSV and XLSX.

import { axeCheck, run, screenshot, signIn, step, until } from "../lib.mjs";

await run("reports", async ({ page }) => {
  await signIn(page, { as: "supervisor", subject: "lead" });
  await page.waitForURL("**/wallboard");
  await page.goto("/reports");
  await page.getByLabel("Report", { exact: true }).selectOption("service-level");
  await page.getByLabel("Interval").selectOption("60min");
  await page.getByLabel("Rows per").selectOption("skill_group");
  await page.getByRole("button", { name: "Run", exact: true }).click();
  await until("the report table", async () => (await page.locator("#report thead th").count()) > 0);
  const heading = await page.locator("#table-h").textContent();
  step(`report: ${heading}; ${await page.locator("#rows").textContent()}`);
  await axeCheck(page, "reports");
  for (const [button, ext] of [["Download CSV", "csv"], ["Download XLSX", "xlsx"]]) {
    const [file] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: button }).click()]);
    const name = file.suggestedFilename();
    const path = await file.path();
    const { statSync, readFileSync } = await import("node:fs");
    const size = statSync(path).size;
    const head = readFileSync(path).subarray(0, 4);
    step(`downloaded ${name}: ${size} bytes`);
    if (!name.endsWith(`.${ext}`) || size === 0) throw new Error(`bad download ${name} (${size} bytes)`);
    if (ext === "xlsx" && head.toString("latin1") !== "PK\u0003\u0004") throw new Error("the XLSX is not a zip file");
  }
  await screenshot(page, "reports");
});
