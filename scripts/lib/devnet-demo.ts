/**
 * The devnet's two demo users (alice and carol) as PSP clients: both
 * announce presence; carol finds alice by her identity alone, is introduced
 * through one of alice's presence points, and they exchange a message each
 * way over a rendezvous channel. Afterwards alice stays present and answers
 * every message anyone sends her (`psp msg send --to <alice>`), so a new
 * user has someone to talk to. Then the demo stream runs, and once its
 * first reward epoch is final the operators' claims are paid
 * (devnet-rewards.ts).
 *
 * Uses only the public client API (createPspClient), as an app would.
 */
import { createPspClient } from "../../node/src/client/client.js";
import type { PspClient } from "../../node/src/client/client.js";
import type { PresenceChannel } from "../../node/src/presence/channel.js";
import { childLogger, logFailure } from "../../node/src/log.js";
import { ffmpegAvailable, startStreamDemo } from "./devnet-stream.js";
import type { StreamDemo } from "./devnet-stream.js";
import { runCommercialDemo } from "./devnet-commercial.js";
import { runRewardsDemo, type RewardsDemoResult } from "./devnet-rewards.js";
import { DEVNET_REPORT_INTERVAL_SECONDS } from "./devnet-nodes.js";
import type { Logger } from "../../node/src/log.js";

export interface DevnetUsersOptions {
  stateFile: string;
  users: readonly { name: string; identity: string; keyFile: string }[];
  passphrase: string;
  /** Progress lines and failures (the clients log beneath it too); silent when absent. */
  logger?: Logger;
  /** Called once the demo stream runs (the devnet records it for the dashboard's player: devnet-gateway.ts publishDemoStream). */
  onStream?: (demo: StreamDemo) => void;
}

export interface DevnetUsers {
  /** Resolves once both users are up and announced (rejects if stopped first). */
  started: Promise<{ alice: PspClient; carol: PspClient }>;
  /** The first exchange, once it happened. */
  demo: Promise<{ connectMs: number; roundTripMs: number }>;
  /** The first reward epoch settled and claimed for the operators (undefined: no stream ran, or stopped first). */
  rewards: Promise<RewardsDemoResult | undefined>;
  /** Closes every client made so far, whether or not start-up finished. */
  stop(): Promise<void>;
}

const short = (identity: string): string => `${identity.split(".").slice(0, 3).join(".")}.${identity.split(".")[3]?.slice(0, 8)}…`;

/** Starts both users; alice answers every channel; carol greets alice once. Returns at once: await `started` and `demo`. */
export function startDevnetUsers(o: DevnetUsersOptions): DevnetUsers {
  const log = childLogger(o.logger, "devnet.demo");
  const clients: PspClient[] = [];
  const channels = new Set<PresenceChannel>();
  let stopped = false;
  let streamDemo: StreamDemo | undefined;
  const user = (name: string) => {
    const u = o.users.find((x) => x.name === name);
    if (!u) throw new Error(`devnet: no demo user "${name}" in the state file`);
    return u;
  };
  const names = new Map(o.users.map((u) => [u.identity, u.name]));
  const nameOf = (identity: string): string => names.get(identity) ?? short(identity);

  const started = (async () => {
    const [alice, carol] = (await Promise.all(
      ["alice", "carol"].map(async (name) => {
        const client = await createPspClient({
          bootstrap: { devnet: o.stateFile },
          identity: { keyFile: user(name).keyFile, passphrase: o.passphrase },
          // The devnet's reward epochs are short: players report as often as its nodes do.
          reportIntervalSeconds: DEVNET_REPORT_INTERVAL_SECONDS,
          ...(o.logger ? { logger: o.logger.child({ user: name }) } : {}),
        });
        clients.push(client);
        if (stopped) await client.close();
        await client.ready;
        return client;
      }),
    )) as [PspClient, PspClient];
    if (stopped) throw new Error("devnet demo users stopped while starting");
    // alice: accept everyone, answer every message.
    alice.on("introduction", (intro) => {
      intro
        .accept()
        .then((channel) => {
          channels.add(channel);
          void channel.closed.then(() => channels.delete(channel));
          void (async () => {
            for await (const m of channel.messages()) {
              log.info(`msg      alice <- ${nameOf(m.from)}: ${m.text}`);
              await channel.send(`alice here, got "${m.text.slice(0, 200)}"`).catch((err: unknown) => logFailure(log, err, "alice reply", "warn"));
            }
          })();
        })
        .catch((err: unknown) => logFailure(log, err, "alice accept", "warn", { from: nameOf(intro.from) }));
    });
    const [alicePoints, carolPoints] = await Promise.all([alice.presence.announce(), carol.presence.announce()]);
    log.info(
      `presence alice announced at ${alicePoints.filter((p) => p.state === "up").length} presence points, carol at ${carolPoints.filter((p) => p.state === "up").length}`,
    );
    return { alice, carol };
  })();

  const demo = started.then(async ({ alice, carol }) => {
    const t0 = performance.now();
    const channel = await carol.connect(alice.identity!);
    const connectMs = performance.now() - t0;
    log.info(`connect  carol found alice by identity and opened a private channel in ${connectMs.toFixed(0)} ms (lookup, introduction, rendezvous)`);
    const replies = channel.messages();
    const sent = performance.now();
    await channel.send("hello alice, carol here");
    const reply = await replies.next();
    const roundTripMs = performance.now() - sent;
    log.info(`msg      carol <- alice: ${reply.value?.text ?? "(no reply)"} (${roundTripMs.toFixed(0)} ms round trip)`);
    channel.close();
    // The demo application's commercial node (issue 17), reached through a circuit; a failure is shown, not fatal to the demo.
    await runCommercialDemo(carol, (line) => log.info(line)).catch((err: unknown) => logFailure(log, err, "reach demo.shop's commercial node", "warn"));
    // The demo stream (issue 15) needs real media: ffmpeg's test source.
    if (!ffmpegAvailable()) log.info("stream   no ffmpeg on the PATH: the demo stream is skipped (install Debian's ffmpeg package to see it)");
    else if (!stopped) {
      await startStreamDemo(alice, carol, (line) => log.info(line))
        .then((started) => {
          streamDemo = started;
          if (stopped) started.stop();
          else o.onStream?.(started);
          log.info(`stream   watch it too: npx psp stream play --ticket ${started.ticket} | ffplay -`);
        })
        .catch((err: unknown) => logFailure(log, err, "run the demo stream", "warn"));
    }
    return { connectMs, roundTripMs };
  });
  // Once the stream runs, its carriers are paid: the first final epoch is claimed for every operator that earned.
  const rewards = demo.then(async () => {
    if (!streamDemo || stopped) return undefined;
    const { carol } = await started;
    return await runRewardsDemo({ stateFile: o.stateFile, client: carol, log: (line) => log.info(line), stopped: () => stopped });
  });
  started.catch(() => undefined);
  demo.catch(() => undefined);
  rewards.catch((err: unknown) => logFailure(log, err, "settle and claim the demo stream's rewards", "warn"));

  return {
    started,
    demo,
    rewards,
    async stop() {
      stopped = true;
      streamDemo?.stop();
      for (const c of channels) c.close();
      await Promise.all(clients.map((c) => c.close()));
    },
  };
}
