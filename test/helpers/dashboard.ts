/**
 * Opens the devnet dashboard in Debian's chromium (driven by playwright-core,
 * no browser download) and checks it as a person would: every panel shows
 * live values, and they change while the devnet runs. Screenshots go to
 * test-artifacts/dashboard/ (gitignored), whole page and panel by panel.
 *
 * The flags keep chromium off the network (this machine's is closed: without
 * them it hangs on connections it tries at start).
 */
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "vitest";
import { chromium } from "playwright-core";
import type { Page } from "playwright-core";
import { projectRoot } from "../../scripts/lib/artifacts.js";

export const CHROMIUM = "/usr/bin/chromium";
export const DASHBOARD_ARTIFACTS = join(projectRoot, "test-artifacts", "dashboard");
/** Debian chromium's flags for tests: headless as root, and off the network (this machine's is closed). */
export const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** Why the browser test cannot run here, or undefined. In CI a missing chromium is a failure, not a skip (.ci/run installs it). */
export function chromiumMissing(): string | undefined {
  if (existsSync(CHROMIUM)) return undefined;
  if (process.env.CI) throw new Error(`${CHROMIUM} is missing in CI: .ci/run installs Debian's chromium package`);
  return `${CHROMIUM} is not installed (apt-get install chromium): the dashboard browser test is skipped`;
}

export const PANELS = ["nodes", "consensus", "circuits", "dht", "presence", "bandwidth", "streams", "stakes", "rewards", "events"] as const;

const figure = async (page: Page, panel: string, key: string): Promise<string> =>
  (await page.locator(`[data-panel="${panel}"] [data-figure="${key}"] .v`).first().textContent({ timeout: 10_000 })) ?? "";
/**
 * Screenshots one element as the part of a full-page picture its box covers. Not locator.screenshot: that first waits
 * for the box to hold still over two animation frames, which this page (re-rendering twice a second, a video playing)
 * did not give it within 21 s on a loaded CI machine. The picture is an artifact; the checks above assert the content.
 */
async function shootElement(page: Page, selector: string, path: string): Promise<void> {
  // Runs in the page: its box in viewport terms, plus the scroll, gives the document coordinates a full-page clip takes.
  const clip = await page.locator(selector).evaluate((element) => {
    const box = element.getBoundingClientRect();
    const view = globalThis as unknown as { scrollX: number; scrollY: number };
    return { x: box.x + view.scrollX, y: box.y + view.scrollY, width: box.width, height: box.height };
  });
  expect(clip.width * clip.height, `${selector} has no area to picture`).toBeGreaterThan(0);
  await page.screenshot({ path, fullPage: true, clip });
}
const count = (text: string): number => Number(text.replace(/[^0-9.]/g, ""));

export interface DashboardCheck {
  /** Each panel's text when first seen with data, and when seen changed. */
  first: Record<string, string>;
  changed: Record<string, string>;
  screenshots: string[];
}

/** Opens `url` and checks every panel; `expectStream` also requires a fan-out tree with viewers. */
export async function checkDashboard(url: string, options: { expectStream: boolean; nodes: number; timeoutMs?: number }): Promise<DashboardCheck> {
  const timeout = options.timeoutMs ?? 90_000;
  await mkdir(DASHBOARD_ARTIFACTS, { recursive: true });
  const profile = await mkdtemp(join(tmpdir(), "psp-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1440, height: 1800 },
  });
  const errors: string[] = [];
  try {
    const page = await context.newPage();
    page.on("pageerror", (err) => errors.push(err.message));
    await page.goto(url, { waitUntil: "load" });
    await expect.poll(() => page.getAttribute("#connection", "data-state"), { timeout, interval: 250 }).toBe("live");
    // Every panel has taken data (its data-updated is the time of the newest it shows).
    const first: Record<string, string> = {};
    const stamps: Record<string, string> = {};
    for (const panel of PANELS) {
      await expect.poll(() => page.getAttribute(`[data-panel="${panel}"]`, "data-updated"), { timeout, interval: 250 }).toMatch(/^\d+$/);
      stamps[panel] = (await page.getAttribute(`[data-panel="${panel}"]`, "data-updated"))!;
      first[panel] = (await page.locator(`[data-panel="${panel}"]`).textContent()) ?? "";
    }
    // Live values, panel by panel.
    await expect.poll(() => page.locator('[data-panel="nodes"] tbody tr').count(), { timeout, interval: 250 }).toBe(options.nodes);
    await expect.poll(async () => count(await figure(page, "consensus", "signers")), { timeout, interval: 250 }).toBeGreaterThanOrEqual(2);
    await expect.poll(async () => count(await figure(page, "consensus", "nodes")), { timeout, interval: 250 }).toBe(options.nodes);
    await expect.poll(async () => count(await figure(page, "circuits", "links")), { timeout, interval: 250 }).toBeGreaterThan(0);
    await expect.poll(async () => count(await figure(page, "dht", "table")), { timeout, interval: 250 }).toBeGreaterThan(0);
    expect(await figure(page, "presence", "points")).toMatch(/^\d+$/);
    await expect.poll(async () => count(await figure(page, "stakes", "bonded")), { timeout, interval: 250 }).toBeGreaterThan(0);
    expect(await figure(page, "rewards", "epoch")).toMatch(/^\d+$/);
    expect(await page.locator('[data-panel="rewards"] svg rect').count()).toBeGreaterThan(0);
    await expect.poll(() => page.locator('[data-panel="bandwidth"] .uplot canvas').count(), { timeout, interval: 250 }).toBeGreaterThan(0);
    await expect.poll(() => page.locator("#log li").count(), { timeout, interval: 250 }).toBeGreaterThan(0);
    if (options.expectStream) {
      await expect.poll(async () => count(await figure(page, "streams", "viewers")), { timeout, interval: 250 }).toBeGreaterThanOrEqual(1);
      await expect.poll(() => page.locator('[data-panel="streams"] svg circle').count(), { timeout, interval: 250 }).toBeGreaterThanOrEqual(1);
      await expect.poll(async () => count(await figure(page, "streams", "bytes")), { timeout, interval: 250 }).toBeGreaterThan(0);
      // The page itself is a viewer: the demo stream plays, opened with the ticket's key in the page.
      const played = () => page.locator('[data-role="demo-video"]').evaluate((v) => (v as unknown as { currentTime: number }).currentTime);
      await expect.poll(played, { timeout, interval: 250 }).toBeGreaterThan(1);
      const frames = count(await figure(page, "player", "frames"));
      await expect.poll(async () => count(await figure(page, "player", "frames")), { timeout, interval: 250 }).toBeGreaterThan(frames);
      expect(await figure(page, "player", "failed")).toBe("0");
    }
    const screenshots: string[] = [];
    const whole = join(DASHBOARD_ARTIFACTS, "dashboard.png");
    await page.screenshot({ path: whole, fullPage: true });
    screenshots.push(whole);
    // Every panel's data moves on: a newer stamp and different text.
    const changed: Record<string, string> = {};
    for (const panel of PANELS) {
      await expect
        .poll(
          async () =>
            (await page.getAttribute(`[data-panel="${panel}"]`, "data-updated")) !== stamps[panel] &&
            (await page.locator(`[data-panel="${panel}"]`).textContent()) !== first[panel],
          {
            timeout,
            interval: 500,
            message: `panel ${panel} never changed`,
          },
        )
        .toBe(true);
      changed[panel] = (await page.locator(`[data-panel="${panel}"]`).textContent()) ?? "";
      const shot = join(DASHBOARD_ARTIFACTS, `panel-${panel}.png`);
      await shootElement(page, `[data-panel="${panel}"]`, shot);
      screenshots.push(shot);
    }
    if (options.expectStream) {
      const shot = join(DASHBOARD_ARTIFACTS, "panel-player.png");
      await shootElement(page, '[data-panel="player"]', shot);
      screenshots.push(shot);
    }
    expect(errors, `errors in the page: ${errors.join("; ")}`).toEqual([]);
    return { first, changed, screenshots };
  } finally {
    await context.close();
    await rm(profile, { recursive: true, force: true });
  }
}
