// Drives Debian's chromium (via playwright-core, no browser download)
// against a running engine's dashboard and asserts from the DOM what a
// person would see. Called by tests/dashboard/main.rs; prints one JSON
// line of measurements on success, the failure and exits 1 otherwise.
//
//   node tests/dashboard/browser.mjs '{"url":"http://127.0.0.1:PORT/","token":"...",
//     "signal":"sma_cross:EURUSD:1h:...","strategies":["sma_cross",...],
//     "quarantined":["hostile"],"screenshots":"docs/screenshots"}'

import { createRequire } from "node:module";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const require = createRequire(new URL("../../dashboard/package.json", import.meta.url));
const { chromium } = require("playwright-core");

const args = JSON.parse(process.argv[2]);
const PATIENCE = 60_000; // a hang guard, not a timing assertion
const chromiumPath = process.env.CANDLEWICK_CHROMIUM ?? "/usr/bin/chromium";

function check(ok, what) {
  if (!ok) throw new Error(`dashboard: ${what}`);
}

const profile = mkdtempSync(join(tmpdir(), "cw-chromium-"));
const browser = await chromium.launchPersistentContext(profile, {
  executablePath: chromiumPath,
  headless: true,
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
  viewport: { width: 1280, height: 900 },
  colorScheme: "light",
});
const out = {};
try {
  const page = browser.pages()[0] ?? (await browser.newPage());
  page.setDefaultTimeout(PATIENCE);
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => {
    if (/Content Security Policy/i.test(m.text())) errors.push(m.text());
  });

  // 1. No token: the shell only, a form, no data.
  await page.goto(args.url);
  await page.locator("#login").waitFor({ state: "visible" });
  check(await page.locator("#board").isHidden(), "the board shows before a token");

  // 2. A wrong token: an error, still no data, nothing kept.
  await page.fill("#token", "not-the-token");
  await page.press("#token", "Enter");
  await page.locator("#error").waitFor({ state: "visible" });
  const err = await page.locator("#error").textContent();
  check(/refused/i.test(err ?? ""), `wrong token: error says ${JSON.stringify(err)}`);
  check(await page.locator("#board").isHidden(), "wrong token: the board shows");
  check((await page.locator("#strategy-table tbody tr").count()) === 0, "wrong token: strategy rows rendered");
  check((await page.locator("#chart").getAttribute("data-candles")) === "0", "wrong token: candles rendered");
  check((await page.evaluate(() => sessionStorage.getItem("candlewick.token"))) === null, "wrong token kept");

  // 3. The right token, typed: candles render.
  const started = Date.now();
  await page.fill("#token", args.token);
  await page.press("#token", "Enter");
  await page.waitForFunction(() => Number(document.getElementById("chart")?.dataset.candles ?? 0) > 0);
  out.first_candles_ms = Date.now() - started;
  const candles = Number(await page.locator("#chart").getAttribute("data-candles"));
  check(candles > 0, "no candle rendered");
  check((await page.locator("#chart canvas").count()) > 0, "no chart canvas");
  out.candles_at_open = candles;

  // 4. The marker of a signal the feed sent (and its row).
  await page.waitForFunction(
    (id) => (document.getElementById("chart")?.dataset.markerIds ?? "").split(" ").includes(id) ||
      document.querySelector(`tr[data-signal-id="${CSS.escape(id)}"]`) !== null,
    args.signal,
  );
  out.markers = Number(await page.locator("#chart").getAttribute("data-markers"));
  check(out.markers > 0, "no signal marker");

  // 5. The strategies, the hostile one quarantined.
  for (const name of args.strategies) {
    await page.locator(`#strategy-table tr[data-strategy="${name}"]`).waitFor();
  }
  for (const name of args.quarantined) {
    const row = page.locator(`#strategy-table tr[data-strategy="${name}"][data-state="quarantined"]`);
    await row.waitFor();
    const badge = await row.locator(".badge").textContent();
    check(/quarantined/i.test(badge ?? ""), `${name}: badge says ${JSON.stringify(badge)}`);
    const cause = await row.locator("td.cause").textContent();
    check((cause ?? "–") !== "–", `${name}: no cause shown`);
  }
  for (const name of args.strategies.filter((n) => !args.quarantined.includes(n))) {
    const state = await page.locator(`#strategy-table tr[data-strategy="${name}"]`).getAttribute("data-state");
    check(state === "running", `${name} is ${state}`);
  }

  // 6. Live: more candles arrive without a reload.
  await page.waitForFunction(
    (n) => Number(document.getElementById("chart")?.dataset.candles ?? 0) > n, candles);
  check((await page.locator("#conn").textContent())?.startsWith("live"), "feed not live");

  // 7. The engine panel.
  await page.waitForFunction(() => document.querySelectorAll("#kpis div").length >= 10);
  check((await page.locator("#rates canvas").count()) > 0, "no rates chart");

  // 8. Keyboard: Tab reaches the stream picker and the chart.
  await page.locator("#stream").focus();
  await page.keyboard.press("Tab");
  check(await page.evaluate(() => document.activeElement?.id === "chart"), "Tab does not reach the chart");
  await page.keyboard.press("ArrowLeft");

  out.page_bytes = await page.evaluate(() => {
    const nav = performance.getEntriesByType("navigation")[0];
    const res = performance.getEntriesByType("resource").filter((r) => /dashboard\.(js|css)$/.test(r.name));
    return (nav?.encodedBodySize ?? 0) + res.reduce((n, r) => n + r.encodedBodySize, 0);
  });

  if (args.screenshots) {
    mkdirSync(args.screenshots, { recursive: true });
    await page.mouse.move(0, 0);
    await page.waitForTimeout(1500); // let a few more samples land in the engine charts
    for (const id of ["charts", "strategies", "engine"]) {
      await page.locator(`#${id}`).screenshot({ path: join(args.screenshots, `${id}.png`) });
    }
    await page.screenshot({ path: join(args.screenshots, "dashboard.png"), fullPage: true });
    await page.emulateMedia({ colorScheme: "dark" });
    await page.waitForTimeout(300);
    await page.screenshot({ path: join(args.screenshots, "dashboard-dark.png"), fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.waitForTimeout(300);
    await page.screenshot({ path: join(args.screenshots, "phone-dark.png") });
  }

  // 9. The token from the URL fragment, then gone from the address bar;
  // each load also times the first render (navigation start to the
  // history's candles drawn), for benches/README.md.
  const renders = [];
  for (let i = 0; i < 5; i++) {
    const page2 = await browser.newPage();
    page2.setDefaultTimeout(PATIENCE);
    await page2.goto(`${args.url}#token=${encodeURIComponent(args.token)}`);
    await page2.waitForFunction(() => performance.getEntriesByName("cw-first-candles").length > 0);
    check((await page2.evaluate(() => location.hash)) === "", "the token stays in the URL");
    renders.push(await page2.evaluate(() => performance.getEntriesByName("cw-first-candles")[0].startTime));
    await page2.close();
  }
  renders.sort((a, b) => a - b);
  out.first_render_ms = { median: renders[2], min: renders[0], max: renders[4] };

  check(errors.length === 0, `page errors: ${errors.join("; ")}`);
  console.log(JSON.stringify(out));
} catch (e) {
  console.error(String(e?.stack ?? e));
  process.exitCode = 1;
} finally {
  await browser.close();
  rmSync(profile, { recursive: true, force: true });
}
