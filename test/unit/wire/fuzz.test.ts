/** The wire decoders' fuzz properties (test/properties/wire.ts), run briefly; scripts/fuzz-wire.ts runs them at length. */
import { describe } from "vitest";
import { fuzzTests } from "../../properties/vitest.js";
import { wireTargets } from "../../properties/wire.js";

describe("wire fuzzing", () => fuzzTests(wireTargets));
