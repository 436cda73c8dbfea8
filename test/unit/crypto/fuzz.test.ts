/** The crypto parsers' fuzz properties (test/properties/crypto.ts), run briefly; scripts/fuzz-wire.ts runs them at length. */
import { describe } from "vitest";
import { cryptoTargets } from "../../properties/crypto.js";
import { fuzzTests } from "../../properties/vitest.js";

describe("crypto fuzzing", () => fuzzTests(cryptoTargets));
