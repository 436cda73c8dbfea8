/** The receipt and session id decoders' fuzz properties (test/properties/stream.ts), run briefly. */
import { describe } from "vitest";
import { streamTargets } from "../properties/stream.js";
import { fuzzTests } from "../properties/vitest.js";

describe("stream receipt fuzzing", () => fuzzTests(streamTargets));
