/** Runs the media path's fuzz properties (test/properties/stream-media.ts) a few hundred times each. */
import { describe } from "vitest";
import { streamMediaTargets } from "../properties/stream-media.js";
import { fuzzTests } from "../properties/vitest.js";

describe("stream media decoders under fuzz", () => {
  fuzzTests(streamMediaTargets);
});
