/**
 * The pictures: a stream's fan-out tree and the reward epoch timeline as
 * SVG, and bandwidth over time with uPlot. Each takes plain data (model.ts)
 * and returns or updates an element.
 */
import uPlot from "uplot";
import type { FanoutTree, RewardEpoch, Sample } from "./model.js";

const SVG = "http://www.w3.org/2000/svg";

function el<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number>, text?: string): SVGElementTagNameMap[K] {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

const STATUS_COLOUR: Record<string, string> = {
  open: "#4fb3ff",
  voting: "#d29922",
  disputable: "#a371f7",
  final: "#3fb950",
  covered: "#2f6f3a",
};

/** landing → distribution nodes → viewers, left to right. */
export function fanoutSvg(tree: FanoutTree): SVGSVGElement {
  const rows = Math.max(1, tree.distribution.length);
  const rowH = 34;
  const height = rows * rowH + 30;
  const width = 560;
  const svg = el("svg", { viewBox: `0 0 ${width} ${height}`, width: "100%", role: "img", "aria-label": `fan-out of stream ${tree.stream.slice(0, 8)}` });
  svg.append(el("text", { x: 0, y: 12, class: "muted" }, `stream ${tree.stream.slice(0, 12)}…`));
  const mid = 20 + (rows * rowH) / 2;
  const landX = 70;
  const distX = 260;
  const viewX = 430;
  tree.distribution.forEach((d, i) => {
    const y = 20 + i * rowH + rowH / 2;
    svg.append(
      el("path", {
        d: `M${landX + 50},${mid} C${landX + 120},${mid} ${distX - 110},${y} ${distX - 50},${y}`,
        stroke: "#4fb3ff",
        fill: "none",
        "stroke-width": 1.5,
        opacity: 0.7,
      }),
    );
    svg.append(el("rect", { x: distX - 50, y: y - 11, width: 100, height: 22, rx: 6, fill: "#10324a", stroke: "#4fb3ff" }));
    svg.append(el("text", { x: distX, y: y + 4, "text-anchor": "middle" }, d.node));
    const shown = Math.min(d.viewers, 8);
    for (let v = 0; v < shown; v++) {
      const vx = viewX + v * 14;
      svg.append(el("line", { x1: distX + 50, y1: y, x2: vx, y2: y, stroke: "#3fb950", opacity: 0.35 }));
      svg.append(el("circle", { cx: vx, cy: y, r: 5, fill: "#3fb950" }));
    }
    svg.append(el("text", { x: viewX + Math.max(1, shown) * 14 + 6, y: y + 4, class: "muted" }, `${d.viewers} viewer${d.viewers === 1 ? "" : "s"}`));
  });
  svg.append(el("rect", { x: landX - 50, y: mid - 13, width: 100, height: 26, rx: 6, fill: "#3a2a10", stroke: "#d29922" }));
  svg.append(el("text", { x: landX, y: mid + 4, "text-anchor": "middle" }, tree.landing ?? "landing ?"));
  return svg;
}

/** The last epochs as blocks coloured by status, with a marker at chain time `now` (unix seconds). */
export function epochTimelineSvg(epochs: RewardEpoch[], now: number): SVGSVGElement {
  const width = 960;
  const height = 74;
  const svg = el("svg", { viewBox: `0 0 ${width} ${height}`, width: "100%", class: "timeline", role: "img", "aria-label": "reward epoch timeline" });
  const sorted = [...epochs].sort((a, b) => a.epoch - b.epoch);
  if (sorted.length === 0) return svg;
  const t0 = sorted[0]!.startsAt;
  const t1 = Math.max(sorted.at(-1)!.endsAt, now);
  const x = (t: number) => 10 + ((t - t0) / Math.max(1, t1 - t0)) * (width - 20);
  for (const e of sorted) {
    const x0 = x(e.startsAt);
    const w = Math.max(2, x(e.endsAt) - x0 - 2);
    svg.append(el("rect", { x: x0, y: 14, width: w, height: 24, rx: 3, fill: STATUS_COLOUR[e.status] ?? "#26303b", opacity: 0.85 }));
    svg.append(el("text", { x: x0 + w / 2, y: 30, "text-anchor": "middle" }, String(e.epoch)));
    svg.append(el("text", { x: x0 + w / 2, y: 54, "text-anchor": "middle", class: "muted" }, e.status));
  }
  const nx = x(Math.min(now, t1));
  svg.append(el("line", { x1: nx, y1: 6, x2: nx, y2: 44, stroke: "#f85149", "stroke-width": 2 }));
  svg.append(el("text", { x: nx, y: 70, "text-anchor": "middle", class: "muted" }, "now"));
  return svg;
}

/** A uPlot chart of relayed and streamed bytes per second; call update with the whole series. */
export function bandwidthChart(target: HTMLElement): { update(series: Sample[]): void } {
  const width = () => Math.max(320, target.clientWidth);
  const plot = new uPlot(
    {
      width: width(),
      height: 220,
      series: [
        {},
        { label: "relayed (circuits)", stroke: "#4fb3ff", width: 2, value: (_u, v) => (v == null ? "-" : `${(v / 1024).toFixed(1)} KiB/s`) },
        { label: "streamed", stroke: "#3fb950", width: 2, value: (_u, v) => (v == null ? "-" : `${(v / 1024).toFixed(1)} KiB/s`) },
      ],
      axes: [
        { stroke: "#8b98a5", grid: { stroke: "#26303b" } },
        { stroke: "#8b98a5", grid: { stroke: "#26303b" }, size: 70, values: (_u, ticks) => ticks.map((v) => `${(v / 1024).toFixed(0)} KiB/s`) },
      ],
      scales: { x: { time: true } },
    },
    [[], [], []],
    target,
  );
  window.addEventListener("resize", () => plot.setSize({ width: width(), height: 220 }));
  return {
    update(series) {
      plot.setData([series.map((p) => p.t), series.map((p) => p.relayed), series.map((p) => p.stream)]);
    },
  };
}
