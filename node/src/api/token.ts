/**
 * Bearer tokens for the APIs a PSP process serves: the node's control API
 * when it binds beyond loopback (server.ts) and the client daemon (`psp
 * client run`, client-daemon.ts) always.
 *
 * Owns: which hosts count as loopback (the only binds served without a
 * token), how a token is read from a request (`Authorization: Bearer
 * <token>`), how it is compared (SHA-256 of both sides, then a constant-time
 * compare: neither content nor length leaks), how a token file is written
 * (mode 0600, an existing file narrowed to 0600 too), and the node's
 * `<dataDir>/api-token`: 32 random bytes in hex, made on first start and
 * reused afterwards.
 *
 * Trusts nothing a request carries; trusts the data directory (the node's
 * own, mode 0700) for the token file.
 */
import { randomBytes } from "node:crypto";
import { chmod, readFile, stat, writeFile } from "node:fs/promises";
import { isIP } from "node:net";
import { join } from "node:path";
import { sha256 } from "@noble/hashes/sha2.js";
import { constantTimeEqual } from "../crypto/compare.js";
import { ApiError } from "./errors.js";

/** The node's control API token file, in its data directory. */
export const API_TOKEN_FILE = "api-token";
/** Random bytes in a token the node makes (hex: twice as many characters). */
export const API_TOKEN_BYTES = 32;

const TOKEN_TEXT = /^[0-9a-f]{64}$/;

/**
 * True for binds only this machine can reach: 127.0.0.0/8, ::1, its
 * IPv4-mapped form and `localhost`. Anything else (0.0.0.0, ::, a LAN or
 * public address, another host name) is reachable from elsewhere.
 */
export function isLoopbackHost(host: string): boolean {
  const h = host
    .trim()
    .toLowerCase()
    .replace(/^\[(.*)\]$/, "$1");
  if (h === "localhost") return true;
  if (isIP(h) === 4) return h.startsWith("127.");
  if (isIP(h) === 6) return h === "::1" || h === "0:0:0:0:0:0:0:1" || /^::ffff:127\./.test(h);
  return false;
}

/** The SHA-256 of a token: what a server keeps to compare against. */
export function tokenDigest(token: string): Uint8Array {
  return sha256(new TextEncoder().encode(token));
}

/** Whether `given` is the token whose digest is `expected`, in constant time (hashed first, so lengths do not leak either). */
export function tokenMatches(given: string | undefined, expected: Uint8Array): boolean {
  return given !== undefined && constantTimeEqual(tokenDigest(given), expected);
}

/** The token of an `Authorization: Bearer <token>` header, if it has one. */
export function bearerToken(header: string | string[] | undefined): string | undefined {
  const m = typeof header === "string" ? /^Bearer\s+(\S+)$/i.exec(header) : null;
  return m ? m[1] : undefined;
}

/** Writes `token` where only this user can read it (an existing file is narrowed to 0600 too). Throws the fs error. */
export async function writeTokenFile(path: string, token: string): Promise<void> {
  await writeFile(path, `${token}\n`, { mode: 0o600 });
  await chmod(path, 0o600);
}

/**
 * The control API token of the node whose data directory is `dataDir`:
 * read from `<dataDir>/api-token`, or made (32 random bytes, hex) and
 * written there with mode 0600 when the file does not exist. A file others
 * could read is narrowed to 0600 (`narrowed: true`). Throws ApiError
 * "bad-config" when the file cannot be read or written or holds no token.
 */
export async function loadOrCreateApiToken(dataDir: string): Promise<{ token: string; path: string; created: boolean; narrowed: boolean }> {
  const path = join(dataDir, API_TOKEN_FILE);
  let text: string | undefined;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw fileError(path, "read", err);
  }
  if (text === undefined) {
    const token = randomBytes(API_TOKEN_BYTES).toString("hex");
    try {
      // "wx": never overwrite a token another process just wrote.
      await writeFile(path, `${token}\n`, { mode: 0o600, flag: "wx" });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "EEXIST") return loadOrCreateApiToken(dataDir);
      throw fileError(path, "write", err);
    }
    return { token, path, created: true, narrowed: false };
  }
  const token = text.trim();
  if (!TOKEN_TEXT.test(token))
    throw new ApiError("bad-config", `${path} holds no API token (64 lowercase hex digits): delete it and restart the node to make a new one`, {
      fix: "delete the file and restart the node: a new token is made",
    });
  let narrowed = false;
  try {
    if (((await stat(path)).mode & 0o077) !== 0) {
      await chmod(path, 0o600);
      narrowed = true;
    }
  } catch (err) {
    throw fileError(path, "narrow to mode 0600", err);
  }
  return { token, path, created: false, narrowed };
}

function fileError(path: string, what: string, err: unknown): ApiError {
  const code = (err as NodeJS.ErrnoException).code ?? "error";
  return new ApiError("bad-config", `cannot ${what} the control API token file ${path} (${code}): make the node's dataDir usable by the user it runs as`, {
    cause: err,
    fix: "make the node's dataDir readable and writable by the user the node runs as",
  });
}
