/**
 * Example commercial plugin (docs/spec/commercial.md "Example"): the devnet's
 * demo application serves it from its commercial node.
 *
 * Services:
 *   kv       request: UTF-8 JSON { op: "get" | "put" | "del", key, value? } ->
 *            JSON { ok: true, value? } ; keys 1..64 chars, values <= 1 KiB,
 *            at most 1,000 keys (a full store refuses a new key).
 *   counter  request: any body -> the count of requests so far (decimal UTF-8);
 *            needs an identity (an access certificate of the application).
 *   echo     request: the body back (benchmarks, health checks).
 *   ticker   duplex: every message is answered with "<n>:<message>".
 *
 * Owns only its in-memory state (lost at restart). Trusts nothing in a
 * request: a malformed one is refused with CommercialError "refused".
 */
import { CommercialError } from "../errors.js";
import type { CommercialPlugin } from "../plugin.js";

const MAX_KEYS = 1000;
const MAX_KEY = 64;
const MAX_VALUE = 1024;
const text = new TextDecoder();
const utf8 = (s: string) => new TextEncoder().encode(s);

const store = new Map<string, string>();
let count = 0;

function parseKv(body: Uint8Array): { op: string; key: string; value?: string } {
  let req: unknown;
  try {
    req = JSON.parse(text.decode(body));
  } catch {
    throw new CommercialError("refused", 'kv requests are JSON: { "op": "get" | "put" | "del", "key": "...", "value"?: "..." }');
  }
  const r = req as { op?: unknown; key?: unknown; value?: unknown } | null;
  if (!r || (r.op !== "get" && r.op !== "put" && r.op !== "del")) throw new CommercialError("refused", 'kv op must be "get", "put" or "del"');
  if (typeof r.key !== "string" || r.key.length < 1 || r.key.length > MAX_KEY) throw new CommercialError("refused", `kv key must be 1..${MAX_KEY} characters`);
  if (r.op === "put" && (typeof r.value !== "string" || r.value.length > MAX_VALUE))
    throw new CommercialError("refused", `kv put needs a string value of at most ${MAX_VALUE} characters`);
  return { op: r.op, key: r.key, ...(typeof r.value === "string" ? { value: r.value } : {}) };
}

export const services: CommercialPlugin["services"] = {
  kv: {
    mode: "request",
    handle(body) {
      const { op, key, value } = parseKv(body);
      if (op === "get") return utf8(JSON.stringify(store.has(key) ? { ok: true, value: store.get(key) } : { ok: true }));
      if (op === "del") {
        store.delete(key);
        return utf8(JSON.stringify({ ok: true }));
      }
      if (!store.has(key) && store.size >= MAX_KEYS) throw new CommercialError("refused", `the store holds ${MAX_KEYS} keys; delete one first`);
      store.set(key, value as string);
      return utf8(JSON.stringify({ ok: true }));
    },
  },
  counter: {
    mode: "request",
    requiresIdentity: true,
    handle() {
      count++;
      return utf8(String(count));
    },
  },
  echo: {
    mode: "request",
    handle: (body) => body,
  },
  ticker: {
    mode: "duplex",
    open(io) {
      let n = 0;
      return {
        onMessage(message) {
          n++;
          io.send(utf8(`${n}:${text.decode(message)}`));
        },
      };
    },
  },
};
