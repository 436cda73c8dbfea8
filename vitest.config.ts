import { configDefaults, defineConfig } from "vitest/config";

// Tests run in forked processes: the Hardhat EDR binding and TLS sockets are
// happier in real processes than in worker threads. Two cores: two forks.
export default defineConfig({
  test: {
    include: ["test/**/*.test.ts", "node/**/*.test.ts"],
    // The multi-host testbed needs root and minutes: its own command, npm run test:testbed (vitest.testbed.config.ts).
    exclude: [...configDefaults.exclude, "test/testbed/**"],
    // Tests that spawn `psp` need a build/ as new as the sources.
    globalSetup: ["test/global-setup.ts"],
    pool: "forks",
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
