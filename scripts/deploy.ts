/**
 * Deploys the PSP contracts (idempotent) and writes deployments/<network>.json.
 *
 *   npm run deploy -- [--rpc URL] [--network NAME] [--keystore FILE] [--devnet-params]
 *                     [--timelock-delay SECONDS] [--proposers ADDR,...] [--guardian ADDR]
 *
 * Governance ends up in an OpenZeppelin TimelockController (PSPTimelock) whose
 * proposers and executors are --proposers (default: the deployer; a multisig on
 * a real chain, docs/OPERATIONS.md); BandwidthRewards' guardian is --guardian.
 *
 * Against a local Hardhat chain (id 31337) without --keystore, Hardhat's first
 * development account deploys. Progress (each contract as it is deployed)
 * shows on stderr (node/src/cli/progress.ts); `--json` prints
 * `{ file, written, chainId, contracts }` on stdout instead of the last line.
 */
import { Command, Option } from "commander";
import { getAddress, isAddress, type Address } from "viem";
import { connectChain } from "../node/src/chain/clients.js";
import { readDeployment, type Deployment } from "../node/src/chain/deployment.js";
import { ChainError } from "../node/src/chain/errors.js";
import { defaultRpcUrl, deploymentPath, loadKeystoreAccount } from "../node/src/cli/chain-context.js";
import { printJson } from "../node/src/cli/output.js";
import { withProgress } from "../node/src/cli/progress.js";
import { runCli } from "../node/src/cli/run.js";
import { defaultParams, deployPsp, devnetParams, writeDeployment } from "./lib/deploy.js";
import { HARDHAT_CHAIN_ID, devAccount } from "./lib/devnet-accounts.js";

const program = new Command("deploy")
  .description("deploy the PSP contracts and write deployments/<network>.json")
  .addOption(new Option("--rpc <url>", "JSON-RPC endpoint").default(defaultRpcUrl))
  .option("--network <name>", "name of the deployment file", "localhost")
  .option("--deployment <file>", "deployment file path (overrides --network)")
  .option("--keystore <file>", "deployer's ethers JSON keystore (required except on a local Hardhat chain)")
  .option("--devnet-params", "seconds-long delays and epochs instead of days (local testing)")
  .option("--timelock-delay <seconds>", "governance timelock delay (default: 2 days, 1 s with --devnet-params)")
  .option("--proposers <addresses>", "comma-separated timelock proposers and executors (default: the deployer)")
  .option("--guardian <address>", "BandwidthRewards guardian: rejects roots in their dispute window (default: the deployer)")
  .option("--json", "print { file, written, chainId, contracts } as JSON")
  .action(
    async (opts: {
      rpc: string;
      network: string;
      deployment?: string;
      keystore?: string;
      devnetParams?: boolean;
      timelockDelay?: string;
      proposers?: string;
      guardian?: string;
      json?: boolean;
    }) => {
      const address = (value: string, what: string): Address => {
        if (!isAddress(value.trim())) throw new ChainError("bad-argument", `${what} ${value} is not an EVM address`);
        return getAddress(value.trim());
      };
      const base = opts.devnetParams ? devnetParams : defaultParams;
      const timelockDelay = opts.timelockDelay === undefined ? base.timelockDelay : Number(opts.timelockDelay);
      if (!Number.isSafeInteger(timelockDelay) || timelockDelay < 0)
        throw new ChainError("bad-argument", `--timelock-delay ${opts.timelockDelay} is not a number of seconds`);
      const params = {
        ...base,
        timelockDelay,
        ...(opts.proposers ? { proposers: opts.proposers.split(",").map((p) => address(p, "--proposers")) } : {}),
        ...(opts.guardian ? { guardian: address(opts.guardian, "--guardian") } : {}),
      };
      const probe = await connectChain({ rpcUrl: opts.rpc });
      let account;
      if (opts.keystore) account = await loadKeystoreAccount(opts.keystore);
      else if (probe.chain.id === HARDHAT_CHAIN_ID) account = devAccount(0);
      else throw new ChainError("bad-argument", `chain ${probe.chain.id} is not a local Hardhat chain: pass --keystore with the deployer's key`);
      const clients = await connectChain({ rpcUrl: opts.rpc, account, expectedChainId: probe.chain.id });
      const path = deploymentPath(opts);
      let previous: Deployment | undefined;
      try {
        previous = await readDeployment(path);
      } catch (err) {
        if (!ChainError.is(err, "missing-deployment")) throw err;
      }
      const { deployment, reused } = await withProgress(
        `deploy the PSP contracts to chain ${clients.chain.id} (${opts.rpc})`,
        async (report) =>
          await deployPsp({
            clients,
            network: opts.network,
            params,
            ...(previous ? { previous } : {}),
            log: (line) => report.output(line),
          }),
        opts,
      );
      if (!reused) await writeDeployment(path, deployment);
      if (opts.json)
        printJson({
          file: path,
          written: !reused,
          chainId: deployment.chainId,
          contracts: Object.fromEntries(Object.entries(deployment.contracts).map(([k, v]) => [k, v.address])),
        });
      else console.log(`${reused ? "reused" : "wrote"} ${path}`);
    },
  );

await runCli(program);
