import { createRequire } from "node:module";
import hardhatToolboxViem from "@nomicfoundation/hardhat-toolbox-viem";
import { defineConfig } from "hardhat/config";

// No compiler can be downloaded on our machines: compile offline with the
// soljson.js shipped in the `solc` npm package (pinned in package.json).
const require = createRequire(import.meta.url);
const solcVersion: string = require("solc/package.json").version;
const soljsonPath = require.resolve("solc/soljson.js");

export default defineConfig({
  plugins: [hardhatToolboxViem],
  solidity: {
    version: solcVersion,
    path: soljsonPath,
    settings: {
      optimizer: { enabled: true, runs: 1000 },
      evmVersion: "cancun",
    },
  },
  paths: {
    sources: "./contracts",
    tests: { nodejs: "./test/hardhat-unused" },
  },
  networks: {
    localhost: {
      type: "http",
      url: process.env.PSP_RPC_URL ?? "http://127.0.0.1:8545",
    },
  },
});
