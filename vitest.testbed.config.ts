import { defineConfig, mergeConfig } from "vitest/config";
import base from "./vitest.config.js";

// The multi-host testbed test (`npm run test:testbed`): eleven nodes in network
// namespaces, so it needs root and takes minutes; kept out of `npm test`'s
// budget and run by .ci/run as its own step.
export default mergeConfig(base, defineConfig({ test: { include: ["test/testbed/**/*.test.ts"], exclude: [] } }));
