/**
 * `npm run operator -- <command> [options]`: the same program as `psp operator`
 * (node/src/cli/operator.ts), for operators working from a checkout.
 */
import { operatorProgram } from "../node/src/cli/operator.js";
import { runCli } from "../node/src/cli/run.js";

await runCli(operatorProgram());
