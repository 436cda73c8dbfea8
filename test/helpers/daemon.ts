/**
 * Talking to a client daemon (`psp client run`) as an app does: JSON over
 * HTTP with its bearer token, and the events WebSocket, whose events a test
 * awaits by type (in arrival order, none lost while nobody waits).
 */

export interface DaemonReply {
  status: number;
  json: Record<string, unknown>;
  headers: Headers;
}

/** A caller of the daemon at `url`; `token: null` sends none. A string body is sent as is (malformed JSON). */
export function daemonCaller(url: string, token: string) {
  return async (method: string, path: string, body?: unknown, as: string | null = token): Promise<DaemonReply> => {
    const headers: Record<string, string> = {};
    if (as !== null) headers.authorization = `Bearer ${as}`;
    if (body !== undefined) headers["content-type"] = "application/json";
    const res = await fetch(`${url}${path}`, { method, headers, ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }) });
    return { status: res.status, json: (await res.json()) as Record<string, unknown>, headers: res.headers };
  };
}

export interface DaemonEvents {
  socket: WebSocket;
  /** The next event of `type` (the oldest unclaimed one already received, or the next to come). */
  next(type: string): Promise<Record<string, unknown>>;
  close(): Promise<void>;
}

/** Opens the events socket (token in the query) and waits for its `attached` event. */
export async function daemonEvents(url: string, token: string): Promise<DaemonEvents> {
  const socket = new WebSocket(`${url.replace(/^http/, "ws")}/v1/events?token=${encodeURIComponent(token)}`);
  const seen: Record<string, unknown>[] = [];
  const waiters: { type: string; resolve: (e: Record<string, unknown>) => void }[] = [];
  socket.addEventListener("message", (m) => {
    const event = JSON.parse(String(m.data)) as Record<string, unknown>;
    const i = waiters.findIndex((w) => w.type === event.type);
    if (i >= 0) waiters.splice(i, 1)[0]!.resolve(event);
    else seen.push(event);
  });
  const next = (type: string) =>
    new Promise<Record<string, unknown>>((resolve) => {
      const i = seen.findIndex((e) => e.type === type);
      if (i >= 0) resolve(seen.splice(i, 1)[0]!);
      else waiters.push({ type, resolve });
    });
  await next("attached");
  return {
    socket,
    next,
    close: async () => {
      if (socket.readyState === socket.CLOSED) return;
      const closed = new Promise((r) => socket.addEventListener("close", r));
      socket.close();
      await closed;
    },
  };
}
