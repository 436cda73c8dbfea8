import { defineConfig } from "vitest/config";
import base from "./vitest.config.js";

// The multi-host testbed test (`npm run test:testbed`): eleven nodes in network
// namespaces, so it needs root and takes minutes; kept out of `npm test`'s
// budget and run by .ci/run as its own step. Same settings, its own files
// (mergeConfig would append to include and exclude rather than replace them).
export default defineConfig({ ...base, test: { ...base.test, include: ["test/testbed/**/*.test.ts"], exclude: [] } });
