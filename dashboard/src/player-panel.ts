/**
 * The dashboard's player panel: the devnet's demo stream played in the page,
 * so the browser is a PSP viewer. It waits for the demo stream to run (the
 * devnet records it in GET /v1/devnet as `demo.stream`: ticket and gateway
 * path), attaches the page player (player/: chunks arrive sealed from the
 * devnet's gateway and open here with the ticket's key), shows its figures
 * each second, and attaches again when the stream ends or fails.
 *
 * Owns its section's body (views.ts's render leaves this panel alone: the
 * <video> element must outlive re-renders). Trusts the devnet API for the
 * ticket; nothing from the gateway until it opens under the key.
 */
import { attachStreamPlayer } from "./player/index.js";
import type { StreamPlayer } from "./player/index.js";
import { h } from "./views.js";

interface DemoStream {
  ticket: string;
  streamId: string;
  gateway: string;
}

const RETRY_MS = 3000;

async function demoStream(): Promise<DemoStream | undefined> {
  const res = await fetch("/v1/devnet");
  if (!res.ok) return undefined;
  const state = (await res.json()) as { demo?: { stream?: DemoStream } };
  return state.demo?.stream;
}

export function startPlayerPanel(section: HTMLElement): void {
  const body = section.querySelector<HTMLElement>(".body")!;
  const video = h("video", { muted: "", playsinline: "", autoplay: "", "data-role": "demo-video" }) as HTMLVideoElement;
  video.muted = true;
  const figures = h("div", { class: "figures" });
  const note = h("div", { class: "asof" }, "waiting for the demo stream…");
  body.replaceChildren(video, figures, note);

  let player: StreamPlayer | undefined;
  let stream: DemoStream | undefined;

  const figure = (label: string, value: string, key: string) =>
    h("div", { class: "figure", "data-figure": key }, h("div", { class: "v" }, value), h("div", { class: "l" }, label));

  const attach = async (): Promise<void> => {
    try {
      stream = await demoStream();
    } catch {
      stream = undefined;
    }
    if (!stream) {
      note.textContent = "waiting for the demo stream (it starts once the demo users are up, and needs ffmpeg)…";
      setTimeout(() => void attach(), RETRY_MS);
      return;
    }
    note.textContent = `stream ${stream.streamId.slice(0, 12)}… · chunks arrive sealed from the devnet's gateway and open in this page`;
    player = attachStreamPlayer(video, {
      gatewayUrl: location.href,
      ticket: stream.ticket,
      onEnd: (error) => {
        note.textContent = error ? `player stopped: ${error.kind}: ${error.message}; attaching again…` : "the stream ended; attaching again…";
        player?.close();
        player = undefined;
        setTimeout(() => void attach(), RETRY_MS);
      },
    });
  };

  setInterval(() => {
    if (!player) return;
    const st = player.stats;
    figures.replaceChildren(
      figure("state", st.state, "state"),
      figure("played (s)", video.currentTime.toFixed(1), "played"),
      figure("frames decoded", String(st.decodedFrames), "frames"),
      figure("chunks opened", String(st.chunks), "chunks"),
      figure("chunks refused", String(st.failedChunks), "failed"),
      figure("delay (ms)", st.delayMs === undefined ? "–" : String(Math.round(st.delayMs)), "delay"),
    );
    if (st.chunks > 0) section.dataset.updated = String(Date.now());
  }, 1000);
  void attach();
}
