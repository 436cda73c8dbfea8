/** The presence decoders' fuzz properties (test/properties/presence.ts), run briefly; scripts/fuzz-presence.ts runs them at length. */
import { describe } from "vitest";
import { presenceTargets } from "../../properties/presence.js";
import { fuzzTests } from "../../properties/vitest.js";

describe("presence message fuzzing", () => fuzzTests(presenceTargets));
