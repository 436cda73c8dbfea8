/**
 * The devnet's demo commercial application (issue 17): "demo.shop", whose
 * owner (the deployer) publishes one commercial node on chain with that
 * node's signer consenting, serving the example plugin
 * node/src/commercial/examples/demo-kv.ts (kv, counter, echo, ticker).
 * A second node claims the application in its descriptor without being
 * published: discovery never lists it for the app, so clients never pick it.
 *
 * Owns the demo's names and the publication step; trusts the chain bindings.
 */
import { join } from "node:path";
import type { Hex } from "viem";
import type { PrivateKeyAccount } from "viem/accounts";
import { applicationId, REGISTRATION_POLICY } from "../../node/src/chain/attestation.js";
import type { ChainClients } from "../../node/src/chain/clients.js";
import type { PspApp } from "../../node/src/client/client.js";
import { publishCommercialNode } from "../../node/src/chain/commercial.js";
import type { Deployment } from "../../node/src/chain/deployment.js";
import { identityRegistryAbi } from "../../node/src/chain/generated/abis.js";
import { transact } from "../../node/src/chain/transact.js";
import { projectRoot } from "./artifacts.js";

/** The demo application and the services its commercial node serves. */
export const DEMO_COMMERCIAL = { namespace: "demo", application: "shop", services: ["kv", "counter", "echo", "ticker"] } as const;

/** How a devnet node takes part: published on chain, or only claiming the app in its descriptor. */
export type DevnetCommercialMode = "published" | "claims-only";

/** The compiled example plugin the node processes load (they run build/). */
export function demoPluginPath(): string {
  return join(projectRoot, "build", "node", "src", "commercial", "examples", "demo-kv.js");
}

/** The commercial config section of a devnet node process. */
export function demoCommercialConfig(): { apps: { namespace: string; application: string; plugin: string }[] } {
  return { apps: [{ namespace: DEMO_COMMERCIAL.namespace, application: DEMO_COMMERCIAL.application, plugin: demoPluginPath() }] };
}

/**
 * Registers demo.shop (owned by `admin`) and publishes each `published` node
 * with its signer's consent. Returns the application id.
 */
export async function publishDemoCommercial(
  admin: ChainClients,
  deployment: Deployment,
  nodes: readonly { nodeKey: Hex; signer: PrivateKeyAccount }[],
): Promise<Hex> {
  const registry = deployment.contracts.IdentityRegistry.address;
  const send = async (functionName: "registerNamespace" | "registerApplication", args: readonly unknown[]) =>
    await transact({
      publicClient: admin.publicClient,
      walletClient: admin.walletClient!,
      address: registry,
      abi: identityRegistryAbi,
      functionName,
      args,
    } as never);
  await send("registerNamespace", [DEMO_COMMERCIAL.namespace]);
  await send("registerApplication", [DEMO_COMMERCIAL.namespace, DEMO_COMMERCIAL.application, REGISTRATION_POLICY.open]);
  const appId = applicationId(DEMO_COMMERCIAL.namespace, DEMO_COMMERCIAL.application);
  for (const node of nodes) {
    await publishCommercialNode({ clients: admin, deployment, appId, nodeKey: node.nodeKey, services: DEMO_COMMERCIAL.services, nodeSigner: node.signer });
  }
  return appId;
}

/** What the demo client saw: where it went and how long it took. */
export interface CommercialDemoResult {
  node: string;
  hops: number;
  connectMs: number;
  roundTripMs: number;
  value: string;
}

/**
 * A client of demo.shop: finds the application's node in the consensus,
 * opens service "kv" through a 3-hop circuit ending there, stores a value
 * and reads it back. Waits up to `waitMs` for the consensus to list the node.
 */
export async function runCommercialDemo(
  client: { app(namespace: string, application: string): PspApp },
  log: (line: string) => void,
  waitMs = 120_000,
): Promise<CommercialDemoResult> {
  const app = client.app(DEMO_COMMERCIAL.namespace, DEMO_COMMERCIAL.application);
  const deadline = performance.now() + waitMs;
  while (app.nodes().length === 0) {
    if (performance.now() > deadline) throw new Error(`no consensus listed a commercial node of ${app.name} within ${Math.round(waitMs / 1000)} s`);
    await new Promise((r) => setTimeout(r, 500));
  }
  const t0 = performance.now();
  const kv = await app.connect("kv");
  const connectMs = performance.now() - t0;
  try {
    const utf8 = (s: string) => new TextEncoder().encode(s);
    await kv.request(utf8(JSON.stringify({ op: "put", key: "greeting", value: "hello from carol" })));
    const sent = performance.now();
    const answer = JSON.parse(new TextDecoder().decode(await kv.request(utf8(JSON.stringify({ op: "get", key: "greeting" }))))) as { value?: string };
    const roundTripMs = performance.now() - sent;
    const node = Buffer.from(kv.node).toString("hex");
    log(
      `shop     ${app.name}: the consensus lists ${app.nodes().length} commercial node (${node.slice(0, 12)}…); kv opened through a 3-hop circuit in ${connectMs.toFixed(0)} ms, get -> "${answer.value ?? ""}" in ${roundTripMs.toFixed(0)} ms`,
    );
    return { node, hops: 3, connectMs, roundTripMs, value: answer.value ?? "" };
  } finally {
    kv.close();
  }
}
