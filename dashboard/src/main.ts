/**
 * The devnet dashboard: loads GET /v1/overview, then follows the devnet's
 * aggregate event stream GET /v1/events (reconnecting when it drops) and
 * re-renders its panels at most twice a second. The player panel
 * (player-panel.ts) plays the demo stream in the page. The overview is fetched
 * again every 10 s and on every reward-pool event (stakes, epochs, claims).
 *
 * Served by the devnet API from its root; trusts that API.
 */
import { bandwidthChart } from "./draw.js";
import { applyEvent, applyOverview, emptyState, sample } from "./model.js";
import type { DevnetEvent, Overview } from "./model.js";
import { startPlayerPanel } from "./player-panel.js";
import { render } from "./views.js";

const state = emptyState();
const status = document.getElementById("connection")!;
const head = document.getElementById("head")!;
const chart = bandwidthChart(document.getElementById("chart")!);

let dirty = true;
const markDirty = () => {
  dirty = true;
};

async function loadOverview(): Promise<void> {
  try {
    const res = await fetch("/v1/overview");
    if (!res.ok) throw new Error(`${res.status}: ${await res.text()}`);
    applyOverview(state, (await res.json()) as Overview);
    const o = state.overview!;
    head.textContent = `chain ${o.chain.chainId} · ${o.nodes.length} nodes · ${o.sets.authority.length} authorities, ${o.sets.oracle.length} oracles, ${o.sets.discovery.length} discovery`;
    markDirty();
  } catch (err) {
    head.textContent = `overview failed: ${(err as Error).message}`;
  }
}

function connect(delayMs = 500): void {
  const socket = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/v1/events`);
  socket.addEventListener("open", () => {
    status.textContent = "live";
    status.dataset.state = "live";
    delayMs = 500;
  });
  socket.addEventListener("message", (m) => {
    const e = JSON.parse(String(m.data)) as DevnetEvent;
    applyEvent(state, e);
    if (e.type === "rewards" && typeof e.data.event === "string" && /^Root|^Claimed/.test(e.data.event)) void loadOverview();
    markDirty();
  });
  socket.addEventListener("close", () => {
    status.textContent = "reconnecting…";
    status.dataset.state = "down";
    setTimeout(() => connect(Math.min(delayMs * 2, 5000)), delayMs);
  });
}

startPlayerPanel(document.querySelector<HTMLElement>('[data-panel="player"]')!);
await loadOverview();
connect();
setInterval(() => void loadOverview(), 10_000);
setInterval(() => {
  sample(state, Date.now());
  chart.update(state.series);
  markDirty();
}, 2000);
// Ages and the epoch countdown move with the clock, so panels re-render each second even without events.
setInterval(markDirty, 1000);
setInterval(() => {
  if (!dirty) return;
  dirty = false;
  render(state);
}, 500);
render(state);
