import { describe, expect, it } from "vitest";
import { isLoopbackHost } from "../../../node/src/base/address.js";

describe("isLoopbackHost", () => {
  it("knows loopback hosts in every form a socket reports them, and nothing else", () => {
    for (const h of ["127.0.0.1", "127.3.0.1", "::1", "::ffff:127.0.0.1"]) expect(isLoopbackHost(h)).toBe(true);
    for (const h of ["10.0.0.1", "203.0.113.9", "::ffff:10.0.0.1", "2001:db8::1", "1270.0.0.1", ""]) expect(isLoopbackHost(h)).toBe(false);
  });
});
