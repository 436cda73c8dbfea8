/**
 * Ports for tests. The one implementation lives in scripts/lib/hardhat-node.ts,
 * which the devnet uses too; tests import it from here.
 */
export { freePort } from "../../scripts/lib/hardhat-node.js";
