/** The usage-report decoder's fuzz properties (test/properties/rewards.ts), run briefly. */
import { describe } from "vitest";
import { rewardsTargets } from "../../properties/rewards.js";
import { fuzzTests } from "../../properties/vitest.js";

describe("usage report fuzzing", () => fuzzTests(rewardsTargets));
