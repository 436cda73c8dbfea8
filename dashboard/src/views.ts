/**
 * The panels: each renders its part of the state (model.ts) into its
 * section's body. Text goes in through textContent only (names and values
 * come from the network). Every panel ends with the time of the newest data
 * it shows ("as of"), so a stalled feed is visible at a glance.
 */
import { epochTimelineSvg, fanoutSvg } from "./draw.js";
import { clock, fanoutTrees, formatAge, formatBytes, formatPsp, totals } from "./model.js";
import type { DevnetEvent, RewardEpoch, State } from "./model.js";

type Child = Node | string | number | null | undefined | false;

export function h(tag: string, attrs: Record<string, string> = {}, ...children: Child[]): HTMLElement {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const c of children) if (c !== null && c !== undefined && c !== false) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

const figure = (label: string, value: string | number, key: string) =>
  h("div", { class: "figure", "data-figure": key }, h("div", { class: "v" }, String(value)), h("div", { class: "l" }, label));
const asOf = (s: State, panel: string) => {
  const at = s.panelAt.get(panel);
  return h("div", { class: "asof" }, at ? `as of ${clock(at)}` : "waiting for data…");
};
const empty = (text: string) => h("div", { class: "empty" }, text);

/** Chain time now (unix seconds), from the newest block seen. */
export function chainNow(s: State): number {
  return s.block ? s.block.timestamp + (Date.now() - s.block.seenAt) / 1000 : Date.now() / 1000;
}

export function nameOfKey(s: State): (hex: string) => string {
  const names = new Map((s.overview?.nodes ?? []).map((n) => [n.nodeKey.replace(/^0x/, "").toLowerCase(), n.name]));
  return (hex) => names.get(hex.toLowerCase()) ?? hex.slice(0, 8);
}

const PANELS: Record<string, (s: State) => Child[]> = {
  nodes(s) {
    const nodes = s.overview?.nodes ?? [];
    if (nodes.length === 0) return [empty("no nodes yet")];
    const head = h(
      "tr",
      {},
      ...["node", "roles", "stake", "links", "circuits", "relayed", "DHT table", "presence", "consensus age"].map((t, i) =>
        h("th", i >= 2 ? { class: "num" } : {}, t),
      ),
    );
    const rows = nodes.map((n) => {
      const st = s.stats.get(n.name)?.data;
      const live = s.stats.has(n.name) || n.up;
      const validAfter = st?.consensus?.validAfter;
      return h(
        "tr",
        { "data-node": n.name },
        h("td", {}, h("span", { class: live ? "dot up" : "dot" }), n.name, n.internal ? h("span", { class: "muted" }, " (internal)") : null),
        h("td", {}, ...n.roles.map((r) => h("span", { class: `role ${r}` }, r))),
        h("td", { class: "num" }, `${Math.round(Number(n.stake)).toLocaleString("en-US")} PSP`),
        h("td", { class: "num" }, st?.links ?? "–"),
        h("td", { class: "num" }, st?.circuits ?? "–"),
        h("td", { class: "num" }, st ? formatBytes(st.bytesRelayed ?? 0) : "–"),
        h("td", { class: "num" }, st?.dht?.tableSize ?? "–"),
        h("td", { class: "num" }, st?.presence?.points ?? "–"),
        h("td", { class: "num" }, validAfter ? formatAge((Date.now() - validAfter) / 1000) : "–"),
      );
    });
    return [h("table", {}, h("thead", {}, head), h("tbody", {}, ...rows)), asOf(s, "nodes")];
  },
  consensus(s) {
    const c = s.consensus;
    if (!c) return [empty("no consensus yet"), asOf(s, "consensus")];
    return [
      h(
        "div",
        { class: "figures" },
        figure("age", formatAge((Date.now() - c.validAfter) / 1000), "age"),
        figure("nodes listed", c.nodes, "nodes"),
        figure("signers", c.signers, "signers"),
        figure("valid for", formatAge((c.validUntil - Date.now()) / 1000), "valid"),
      ),
      h("div", { class: "asof" }, `valid after ${clock(c.validAfter)} · held by ${c.adoptedBy.size} node${c.adoptedBy.size === 1 ? "" : "s"} seen`),
      asOf(s, "consensus"),
    ];
  },
  circuits(s) {
    const t = totals(s);
    return [
      h(
        "div",
        { class: "figures" },
        figure("circuits open", t.circuits, "circuits"),
        figure("bytes relayed", formatBytes(t.relayed), "relayed"),
        figure("links", t.links, "links"),
        figure("opened / closed (seen)", `${s.circuitsOpened} / ${s.circuitsClosed}`, "opened"),
      ),
      asOf(s, "circuits"),
    ];
  },
  dht(s) {
    const t = totals(s);
    return [
      h(
        "div",
        { class: "figures" },
        figure("routing entries", t.table, "table"),
        figure("records stored", t.records, "records"),
        figure("lookups", t.lookups, "lookups"),
        figure("failed lookups", t.lookupFailures, "failures"),
      ),
      asOf(s, "dht"),
    ];
  },
  presence(s) {
    const t = totals(s);
    return [
      h(
        "div",
        { class: "figures" },
        figure("points held", t.points, "points"),
        figure("introductions delivered", t.intros, "intros"),
        figure("registrations seen", s.presenceRegistered, "registered"),
      ),
      asOf(s, "presence"),
    ];
  },
  streams(s) {
    const t = totals(s);
    const trees = fanoutTrees(s, nameOfKey(s));
    return [
      h(
        "div",
        { class: "figures" },
        figure("streams", t.streams, "streams"),
        figure("viewers", t.viewers, "viewers"),
        figure("bytes carried", formatBytes(t.streamBytes), "bytes"),
      ),
      ...(trees.length ? trees.map((tree) => fanoutSvg(tree)) : [empty("no stream running")]),
      asOf(s, "streams"),
    ];
  },
  stakes(s) {
    const nodes = [...(s.overview?.nodes ?? [])].sort((a, b) => Number(b.stake) - Number(a.stake));
    const max = Math.max(1, ...nodes.map((n) => Number(n.stake)));
    const sum = nodes.reduce((a, n) => a + Number(n.stake), 0);
    return [
      h(
        "div",
        { class: "figures" },
        figure("bonded", `${Math.round(sum).toLocaleString("en-US")} PSP`, "bonded"),
        figure("block", s.block?.number ?? "–", "block"),
      ),
      h(
        "table",
        { class: "bars" },
        h(
          "tbody",
          {},
          ...nodes.map((n) =>
            h(
              "tr",
              {},
              h("td", {}, n.name),
              h("td", { style: "width:55%" }, h("div", { class: "bar", style: `width:${((Number(n.stake) / max) * 100).toFixed(1)}%` })),
              h("td", { class: "num" }, Math.round(Number(n.stake)).toLocaleString("en-US")),
            ),
          ),
        ),
      ),
      asOf(s, "stakes"),
    ];
  },
  rewards(s) {
    const r = s.overview?.rewards;
    if (!r) return [empty("no reward pool yet")];
    const now = chainNow(s);
    const epoch = Math.floor((now - r.genesis) / r.epochLength);
    const left = r.genesis + (epoch + 1) * r.epochLength - now;
    const t = totals(s);
    const claims = r.claims.map((c) => h("tr", {}, h("td", {}, c.node), h("td", { class: "num" }, formatPsp(c.claimed))));
    const events = s.rewardEvents
      .slice(0, 6)
      .map((e) => h("li", {}, h("span", { class: "t" }, clock(e.at)), h("span", { class: "n" }, e.node ?? "chain"), describe(e)));
    return [
      h(
        "div",
        { class: "figures" },
        figure("epoch", epoch, "epoch"),
        figure("ends in", `${Math.max(0, Math.round(left))} s`, "left"),
        figure("claimed", formatPsp(r.totalClaimed), "claimed"),
        figure("reports sent / acked", `${t.sent} / ${t.acked}`, "reports"),
      ),
      epochTimelineSvg(withCurrent(r.epochs, epoch, r.genesis, r.epochLength), now),
      h("div", { class: "split" }, claims.length ? h("table", {}, h("tbody", {}, ...claims)) : empty("no claims yet"), h("ol", { class: "evlist" }, ...events)),
      asOf(s, "rewards"),
    ];
  },
  bandwidth(s) {
    const last = s.series.at(-1);
    return [
      h(
        "div",
        { class: "asof", "data-figure": "rate" },
        last ? `now: ${formatBytes(last.relayed)}/s relayed, ${formatBytes(last.stream)}/s streamed` : "waiting for two stats events…",
      ),
      asOf(s, "bandwidth"),
    ];
  },
};

/** The listed epochs, plus any newer ones up to `current` (open: the overview is refreshed every 10 s, the clock runs on), the last 8. */
function withCurrent(epochs: RewardEpoch[], current: number, genesis: number, length: number): RewardEpoch[] {
  const out = [...epochs];
  const newest = Math.max(-1, ...epochs.map((e) => e.epoch));
  for (let e = newest + 1; e <= current; e++)
    out.push({
      epoch: e,
      status: "open",
      cumulativeTotal: "0",
      startsAt: genesis + e * length,
      endsAt: genesis + (e + 1) * length,
      agreedAt: 0,
      finalAt: null,
    });
  return out.sort((a, b) => a.epoch - b.epoch).slice(-8);
}

/** One line for an event in the logs. */
export function describe(e: DevnetEvent): string {
  const d = e.data;
  switch (e.type) {
    case "consensus":
      return `adopted a consensus listing ${String(d.nodes)} nodes, ${String(d.signers)} signers`;
    case "circuit":
      return `circuits +${String(d.opened)} −${String(d.closed)} (${String(d.circuits)} open)`;
    case "presence":
      return `${String(d.event)} ×${String(d.count)} (${String(d.points)} points)`;
    case "stream":
      return `${String(d.event)} ${String(d.stream).slice(0, 8)} as ${String(d.role)}${d.viewers !== undefined ? ` (${String(d.viewers)} viewers)` : ""}`;
    case "rewards":
      return d.event === "Claimed"
        ? `Claimed ${formatPsp(String(d.amount))} for epoch ${String(d.epoch)}`
        : `${String(d.event)}${d.epoch !== undefined ? ` epoch ${String(d.epoch)}` : ""}${d.count !== undefined ? ` ×${String(d.count)}` : ""}`;
    case "block":
      return `block ${String(d.number)} (${String(d.transactions)} tx)`;
    default:
      return JSON.stringify(d).slice(0, 120);
  }
}

/** Re-renders every panel (the bandwidth chart's canvas is left in place). */
export function render(s: State): void {
  for (const [name, view] of Object.entries(PANELS)) {
    const section = document.querySelector<HTMLElement>(`[data-panel="${name}"]`);
    if (!section) continue;
    const body = section.querySelector<HTMLElement>(".body")!;
    const keep = name === "bandwidth" ? body.querySelector("#chart") : null;
    body.replaceChildren(
      ...(keep ? [keep] : []),
      ...view(s)
        .filter((c): c is Node | string => c !== null && c !== undefined && c !== false)
        .map((c) => (typeof c === "number" ? String(c) : c)),
    );
    const at = s.panelAt.get(name);
    if (at) section.dataset.updated = String(at);
  }
  const log = document.getElementById("log");
  if (log)
    log.replaceChildren(
      ...s.log
        .slice(0, 40)
        .map((e) =>
          h("li", {}, h("span", { class: "t" }, clock(e.at)), h("span", { class: "k" }, e.type), h("span", { class: "n" }, e.node ?? "chain"), describe(e)),
        ),
    );
  const events = document.querySelector<HTMLElement>('[data-panel="events"]');
  if (events && s.log[0]) events.dataset.updated = String(s.log[0].at);
}
