/**
 * The shared primitives (node/src/base): byte equality and order, hex, UTF-8
 * cut at a character boundary, timeouts and code tables; and that the layer
 * stays below every other (it imports only the error base).
 */
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { BaseError, bytesEqual, codeLookup, compareBytes, concatBytes, hexOf, parseHex, printableAscii, utf8Prefix, withTimeout } from "../../../node/src/base/index.js";
import { KeyedRateLimiter } from "../../../node/src/base/token-bucket.js";

const utf8 = new TextDecoder("utf-8", { fatal: true });

describe("bytes", () => {
  it("compares equality and order bytewise, shorter first on a common prefix", () => {
    expect(bytesEqual(Uint8Array.of(1, 2), Uint8Array.of(1, 2))).toBe(true);
    expect(bytesEqual(Uint8Array.of(1, 2), Uint8Array.of(1, 3))).toBe(false);
    expect(bytesEqual(Uint8Array.of(1), Uint8Array.of(1, 0))).toBe(false);
    expect(compareBytes(Uint8Array.of(1, 2), Uint8Array.of(1, 3))).toBeLessThan(0);
    expect(compareBytes(Uint8Array.of(1), Uint8Array.of(1, 0))).toBeLessThan(0);
    expect(compareBytes(Uint8Array.of(9), Uint8Array.of(1, 0))).toBeGreaterThan(0);
    expect(compareBytes(new Uint8Array(0), new Uint8Array(0))).toBe(0);
    expect([...concatBytes(Uint8Array.of(1), new Uint8Array(0), Uint8Array.of(2, 3))]).toEqual([1, 2, 3]);
  });
});

describe("hex", () => {
  it("writes lower case and reads either case; anything else is undefined", () => {
    const bytes = Uint8Array.of(0, 1, 0xab, 0xff);
    expect(hexOf(bytes)).toBe("0001abff");
    expect(hexOf(bytes.subarray(2))).toBe("abff");
    expect(parseHex("0001ABff")).toEqual(bytes);
    expect(parseHex("")).toEqual(new Uint8Array(0));
    for (const bad of ["abc", "0x00", "zz", "00 "]) expect(parseHex(bad)).toBeUndefined();
  });
});

describe("utf8Prefix", () => {
  it("keeps text that fits as it is", () => {
    expect(utf8.decode(utf8Prefix("héllo", 6))).toBe("héllo");
  });

  it("cuts to the byte budget without ever splitting a character", () => {
    // 1-, 2-, 3- and 4-byte characters, so every cut point falls somewhere inside one.
    const text = "a€😀éb".repeat(20);
    const whole = new TextEncoder().encode(text);
    for (let max = 0; max <= whole.length + 1; max++) {
      const cut = utf8Prefix(text, max);
      expect(cut.length).toBeLessThanOrEqual(max);
      expect(max - cut.length).toBeLessThan(4); // never drops more than one character
      const decoded = utf8.decode(cut); // throws on a split character
      expect(text.startsWith(decoded)).toBe(true);
    }
  });

  it("replaces what is not printable ASCII in labels", () => {
    expect(printableAscii("rate-limited\n€")).toBe("rate-limited??");
  });
});

describe("withTimeout", () => {
  it("settles as the promise does when it is first", async () => {
    await expect(withTimeout(Promise.resolve(7), 10_000, () => new Error("late"))).resolves.toBe(7);
    await expect(withTimeout(Promise.reject(new RangeError("no")), 10_000, () => new Error("late"))).rejects.toThrow(RangeError);
    await expect(withTimeout(Promise.reject("text"), 10_000, () => new Error("late"))).rejects.toThrow("text");
  });

  it("rejects with the caller's error when the time runs out first", async () => {
    const never = new Promise<never>(() => undefined);
    await expect(withTimeout(never, 1, () => new BaseError("bad-argument", "too slow"))).rejects.toThrow(BaseError);
  });
});

describe("codeLookup", () => {
  const Reason = { DONE: 0, PROTOCOL: 1, IDLE: 8 } as const;
  const reasons = codeLookup(Reason);

  it("names every code of the table and nothing else", () => {
    expect(reasons.nameOf(8)).toBe("IDLE");
    expect(reasons.nameOf(0)).toBe("DONE");
    expect(reasons.nameOf(2)).toBeUndefined();
    expect([reasons.isCode(1), reasons.isCode(200)]).toEqual([true, false]);
    expect([reasons.codeOf("IDLE"), reasons.codeOf("NOPE"), reasons.codeOf("toString")]).toEqual([8, undefined, undefined]);
  });

  it("refuses a table with two names for one code", () => {
    expect(() => codeLookup({ A: 1, B: 1 })).toThrow(BaseError);
  });
});

describe("the base layer", () => {
  it("imports nothing of PSP but the error base, and no node: module", async () => {
    const dir = join(import.meta.dirname, "..", "..", "..", "node", "src", "base");
    for (const file of await readdir(dir)) {
      const source = await readFile(join(dir, file), "utf8");
      for (const [, from] of source.matchAll(/from "([^"]+)"/g)) {
        expect(from === "../errors.js" || /^\.\/[a-z0-9-]+\.js$/.test(from ?? ""), `${file} imports ${from}`).toBe(true);
      }
    }
  });
});

describe("KeyedRateLimiter", () => {
  it("keeps one budget per key, says when to retry, and forgets the least recently used key beyond maxKeys", () => {
    const limiter = new KeyedRateLimiter({ requestsPerMinute: 60, burst: 2, maxKeys: 2 });
    expect([limiter.take("a", 0), limiter.take("a", 0)]).toEqual([0, 0]);
    expect(limiter.take("a", 0)).toBe(1000); // one request per second refills
    expect(limiter.take("a", 1000)).toBe(0);
    expect(limiter.take("b", 1000)).toBe(0); // another key has its own budget
    expect(limiter.take("a", 1000)).toBeGreaterThan(0); // a used last: b is the oldest
    expect(limiter.take("c", 1000)).toBe(0); // evicts b, not a
    expect(limiter.size).toBe(2);
    expect(limiter.take("a", 1000)).toBeGreaterThan(0); // a's spent budget was kept
    expect(() => new KeyedRateLimiter({ requestsPerMinute: 60, burst: 1, maxKeys: 0 })).toThrow(BaseError);
  });
});
