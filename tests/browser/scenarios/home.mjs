// `/` in Chinese: the sign-in form and the page links pass axe; the language switch in the
// header turns the UI English and is remembered across a reload.

import { axeCheck, launch, screenshot, step, until } from "../lib.mjs";

const { browser, page, problems } = await launch({ lang: "zh" });
try {
  await page.goto("/");
  await page.getByRole("heading", { level: 1, name: "登录" }).waitFor();
  await axeCheck(page, "sign-in (中文)");
  await screenshot(page, "sign-in");
  step("switch to English in the header");
  await page.getByLabel("语言").selectOption("en");
  await page.getByRole("heading", { level: 1, name: "Sign in" }).waitFor();
  await page.reload();
  await page.getByRole("heading", { level: 1, name: "Sign in" }).waitFor();
  if ((await page.getAttribute("html", "lang")) !== "en") throw new Error("html lang did not follow");
  step("a bad key is refused in the server's own words");
  await page.getByLabel("API key or token").fill("ccb_nosuchkey00_secret");
  await page.getByLabel("Sign in as").selectOption("key");
  await page.getByRole("button", { name: "Sign in" }).click();
  await until("the refusal", async () => /not valid/.test(await page.locator("#status").textContent()));
  if ((await page.locator("#status").getAttribute("role")) !== "alert") throw new Error("the refusal is not an alert");
  if (problems.filter((p) => !/401/.test(p)).length) throw new Error(problems.join("\n"));
  step("PASSED home");
} catch (err) {
  console.error(`FAILED home: ${err.stack || err}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
