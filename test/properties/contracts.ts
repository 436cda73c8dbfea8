/**
 * Invariants of the NodeRegistry and BandwidthRewards under random sequences
 * that mix staking, unstaking, withdrawals, slashing, signer changes, set
 * churn (role changes, activations, evictions), root votes, rejections, vote
 * resets and claims across three epochs, against the real contracts on the
 * in-process Hardhat chain. After every step:
 *
 * - the registry's balance equals totalBonded + totalUnbonding (what it owes);
 * - the pool's balance covers totalReserved, which equals the newest agreed
 *   root's cumulative total minus every claim paid (totalClaimed);
 * - totalClaimed never passes the newest final root's cumulative total;
 * - agreed roots form a chain: later epochs, totals never lower, each agreed
 *   only once the previous one was final;
 * and at every agreement: the proposal's voters are distinct nodes, and at
 * least the round's quorum of them are current oracles that were in the set,
 * without leaving, since the round started (the quorum fixed then from the
 * set size). Every claim paid is against the newest final root and pays the
 * leaf's cumulative amount minus what the account had claimed. Every refused
 * step must be a contract custom error.
 *
 * Run a few hundred times by test/contracts/invariants.test.ts and 10,000
 * times by scripts/invariants.ts. One chain per run of the property: each
 * sequence starts from a snapshot of the same deployment.
 */
import fc from "fast-check";
import { BaseError, ContractFunctionRevertedError, keccak256, parseEther, toEventSelector, toHex, type Hex, type TransactionReceipt } from "viem";
import { privateKeyToAccount, type PrivateKeyAccount } from "viem/accounts";
import { addNode, consentOf, deployCore, ROLE_ONION, ROLE_ORACLE, type CoreFixture, type TypedSigner } from "../contracts/helpers/core.js";
import { buildRewardTree, type RewardTree } from "../contracts/helpers/merkle.js";
import { check } from "./common.js";

const NODES = 6;
const CAP = 4;
const SIGNERS_PER_NODE = 3;
const EPOCHS = 3;
const MIN = parseEther("1000");
const EVICTED = toEventSelector("Evicted(bytes32,uint8,bytes32)");

type Step =
  | { kind: "stake"; node: number; amount: bigint }
  | { kind: "unstake"; node: number; amount: bigint }
  | { kind: "withdraw"; node: number }
  | { kind: "slash"; node: number; amount: bigint }
  | { kind: "rotate"; node: number }
  | { kind: "roles"; node: number }
  | { kind: "activate"; node: number }
  | { kind: "vote"; node: number; epoch: number; proposal: number }
  | { kind: "votes"; nodes: number[]; epoch: number; proposal: number }
  | { kind: "reject"; epoch: number }
  | { kind: "reset"; epoch: number }
  | { kind: "claim"; epoch: number; proposal: number; leaf: number }
  | { kind: "claims"; epoch: number; proposal: number }
  | { kind: "settle"; epoch: number; proposal: number }
  | { kind: "time"; seconds: number };

const node = fc.integer({ min: 0, max: NODES - 1 });
const epoch = fc.integer({ min: 0, max: EPOCHS - 1 });
const amount = fc.integer({ min: 0, max: 3 }).map((n) => (MIN * BigInt(n)) / 2n);
export const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("stake" as const), node, amount }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("unstake" as const), node, amount }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("withdraw" as const), node }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("slash" as const), node, amount }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("rotate" as const), node }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("roles" as const), node }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("activate" as const), node }) },
  // Votes lean on epoch 0 and the honest proposal so that rounds do reach quorum.
  { weight: 12, arbitrary: fc.record({ kind: fc.constant("vote" as const), node, epoch: fc.constantFrom(0, 0, 0, 1, 2), proposal: fc.constantFrom(0, 0, 1) }) },
  // A burst: several nodes vote for the same proposal back to back (what honest oracles do).
  { weight: 4, arbitrary: fc.record({ kind: fc.constant("votes" as const), nodes: fc.uniqueArray(node, { minLength: 2, maxLength: NODES }), epoch: fc.constantFrom(0, 0, 1, 2), proposal: fc.constantFrom(0, 0, 1) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("reject" as const), epoch }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("reset" as const), epoch }) },
  // Every node votes for one proposal, the dispute window passes, every leaf is claimed.
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("settle" as const), epoch, proposal: fc.integer({ min: 0, max: 1 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("claims" as const), epoch: fc.constantFrom(0, 0, 1, 2), proposal: fc.constantFrom(0, 0, 1) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("claim" as const), epoch: fc.constantFrom(0, 0, 1, 2), proposal: fc.constantFrom(0, 0, 1), leaf: fc.integer({ min: 0, max: 2 }) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("time" as const), seconds: fc.constantFrom(0, 600, 1800, 7200) }) },
);

export interface InvariantStats {
  sequences: number;
  steps: number;
  refused: Record<string, number>;
  votes: number;
  agreements: number;
  rejections: number;
  resets: number;
  claims: number;
  rotations: number;
  evictions: number;
}

interface Proposal {
  tree: RewardTree;
  declared: bigint;
  leaves: { account: Hex; amount: bigint }[];
}

interface World {
  core: CoreFixture;
  keys: Hex[];
  signers: PrivateKeyAccount[][];
  proposals: Proposal[][];
  restore: () => Promise<void>;
}

/** One deployment: six oracle-capable nodes (a set of four), three ended epochs, a funded pool. */
async function buildWorld(): Promise<World> {
  const core = await deployCore({ params: { maxOracles: CAP, unbondingDelay: 86_400n }, epochLength: 3600n, disputeWindow: 1800n });
  const signers = Array.from({ length: NODES }, (_, n) => Array.from({ length: SIGNERS_PER_NODE }, (_, s) => privateKeyToAccount(keccak256(toHex(`invariant-signer-${n}-${s}`)))));
  for (const list of signers) for (const s of list) await core.networkHelpers.setBalance(s.address, parseEther("1000"));
  const keys: Hex[] = [];
  for (let n = 0; n < NODES; n++) {
    const signer: TypedSigner = { address: signers[n]![0]!.address, signTypedData: (t) => signers[n]![0]!.signTypedData(t as never) };
    keys.push(await addNode(core, { operator: core.users[n]!, signer, roles: ROLE_ONION | ROLE_ORACLE, stake: MIN * BigInt(1 + (n % 3)), label: `invariant-${n}` }));
  }
  await core.token.write.approve([core.rewards.address, parseEther("3500")]);
  await core.rewards.write.fund([parseEther("3500")]);
  const recipients = [10, 11, 12].map((i) => core.users[i]!.account.address);
  const proposals = Array.from({ length: EPOCHS }, (_, e) => {
    // Cumulative amounts. Proposal 0 is honest; proposal 1's leaves (2 x 300 per epoch) exceed its declared total (400 per epoch).
    const honest = recipients.map((account, i) => ({ account, amount: parseEther(String(100 * (i + 1) * (e + 1))) + BigInt(e) }));
    const greedy = recipients.slice(0, 2).map((account) => ({ account, amount: parseEther(String(300 * (e + 1))) + BigInt(e) }));
    return [
      { tree: buildRewardTree(honest), declared: honest.reduce((a, l) => a + l.amount, 0n), leaves: honest },
      { tree: buildRewardTree(greedy), declared: parseEther(String(400 * (e + 1))), leaves: greedy },
    ];
  });
  const end = core.genesis + BigInt(EPOCHS) * core.epochLength;
  await core.networkHelpers.time.increaseTo(end);
  const snapshot = await core.networkHelpers.takeSnapshot();
  return { core, keys, signers, proposals, restore: () => snapshot.restore() };
}

/** The custom error a refused call carried; anything else is a failure of the property. */
async function attempt(stats: InvariantStats, pending: () => Promise<Hex>, core: CoreFixture): Promise<TransactionReceipt | undefined> {
  try {
    const hash = await pending();
    return await core.publicClient.waitForTransactionReceipt({ hash });
  } catch (err) {
    const revert = err instanceof BaseError ? err.walk((e) => e instanceof ContractFunctionRevertedError) : undefined;
    const name = revert instanceof ContractFunctionRevertedError ? revert.data?.errorName : undefined;
    if (!name) throw err;
    stats.refused[name] = (stats.refused[name] ?? 0) + 1;
    return undefined;
  }
}

/** Runs one sequence from the snapshot and checks every invariant after each step. */
async function runSequence(world: World, steps: readonly Step[], stats: InvariantStats): Promise<void> {
  await world.restore();
  const { core, keys, signers, proposals } = world;
  const { registry, rewards, token } = core;
  const signerIdx = new Array<number>(NODES).fill(0);
  // The model: the chain of agreed roots (newest last), what each account and the pool were paid.
  const chain: { epoch: number; proposal: number; total: bigint; agreedAt: bigint }[] = [];
  const claimedBy = new Map<Hex, bigint>();
  const paid = { total: 0n };
  const voters = new Map<string, Hex[]>();
  const roundSize = new Map<string, bigint>();
  const op = (n: number) => ({ account: core.users[n]!.account });
  const signerOf = (n: number) => signers[n]![signerIdx[n]!]!;

  const vote = async (n: number, epochNo: number, proposal: number): Promise<void> => {
    const p = proposals[epochNo]![proposal]!;
    const round = (await rewards.read.getEpoch([BigInt(epochNo)])).round;
    const roundKey = `${epochNo}:${round}`;
    const before = await rewards.read.currentRound([BigInt(epochNo)]);
    const size = before.startedAt === 0n ? await registry.read.oracleCount() : undefined;
    const receipt = await attempt(stats, () => rewards.write.submitRoot([BigInt(epochNo), p.tree.root, p.declared], { account: signerOf(n) }), core);
    if (!receipt) return;
    stats.votes++;
    if (size !== undefined) roundSize.set(roundKey, size);
    const proposalKey = `${roundKey}:${proposal}`;
    const list = [...(voters.get(proposalKey) ?? []), keys[n]!];
    voters.set(proposalKey, list);
    // A vote that succeeds on an epoch now Disputable is the one that agreed it.
    if ((await rewards.read.epochStatus([BigInt(epochNo)])) === 2) {
      await checkAgreement(world, epochNo, list, roundSize.get(roundKey));
      const agreedAt = (await rewards.read.getEpoch([BigInt(epochNo)])).agreedAt;
      const previous = chain[chain.length - 1];
      if (previous) {
        check(epochNo > previous.epoch, `epoch ${epochNo} agreed after the later epoch ${previous.epoch}`);
        check(p.declared >= previous.total, `epoch ${epochNo} agreed a cumulative total below the previous root's`);
        check(previous.agreedAt + core.disputeWindow <= agreedAt, `epoch ${epochNo} agreed while epoch ${previous.epoch}'s root was disputable`);
      }
      chain.push({ epoch: epochNo, proposal, total: p.declared, agreedAt });
      stats.agreements++;
    }
  };

  const claim = async (epochNo: number, proposal: number, leafNo: number): Promise<void> => {
    const p = proposals[epochNo]![proposal]!;
    const index = leafNo % p.leaves.length;
    const leaf = p.leaves[index]!;
    const receipt = await attempt(stats, () => rewards.write.claim([BigInt(epochNo), leaf.account, leaf.amount, p.tree.proof(leaf.account)]), core);
    if (!receipt) return;
    const [hasFinal, newestFinal] = await rewards.read.latestFinalEpoch();
    check(hasFinal && newestFinal === BigInt(epochNo), `a claim paid against epoch ${epochNo}, not the newest final root`);
    const a = chain.find((c) => c.epoch === epochNo);
    check(a !== undefined && a.proposal === proposal, `epoch ${epochNo} paid a claim under a root it never agreed`);
    const before = claimedBy.get(leaf.account) ?? 0n;
    check(leaf.amount > before, `${leaf.account} was paid again for a cumulative amount it had claimed`);
    check((await rewards.read.claimed([leaf.account])) === leaf.amount, `${leaf.account}'s claimed amount is not its leaf's`);
    claimedBy.set(leaf.account, leaf.amount);
    paid.total += leaf.amount - before;
    stats.claims++;
  };

  for (const s of steps) {
    stats.steps++;
    switch (s.kind) {
      case "stake":
        await token.write.approve([registry.address, s.amount], op(s.node));
        await attempt(stats, () => registry.write.stake([keys[s.node]!, s.amount], op(s.node)), core);
        break;
      case "unstake":
        await attempt(stats, () => registry.write.requestUnstake([keys[s.node]!, s.amount], op(s.node)), core);
        break;
      case "withdraw":
        await attempt(stats, () => registry.write.withdraw([keys[s.node]!], op(s.node)), core);
        break;
      case "slash":
        await attempt(stats, () => registry.write.slash([keys[s.node]!, s.amount, keccak256(toHex("evidence"))]), core);
        break;
      case "rotate": {
        const next = (signerIdx[s.node]! + 1) % SIGNERS_PER_NODE;
        const account = signers[s.node]![next]!;
        const signer: TypedSigner = { address: account.address, signTypedData: (t) => account.signTypedData(t as never) };
        const consent = await consentOf(core, signer, keys[s.node]!, core.users[s.node]!.account.address);
        const ok = await attempt(stats, () => registry.write.setSigner([keys[s.node]!, account.address, consent.deadline, consent.signature], op(s.node)), core);
        if (ok) {
          signerIdx[s.node] = next;
          stats.rotations++;
        }
        break;
      }
      case "roles": {
        const roles = (await registry.read.getNode([keys[s.node]!])).roles;
        await attempt(stats, () => registry.write.setRoles([keys[s.node]!, roles ^ ROLE_ORACLE || ROLE_ONION], op(s.node)), core);
        break;
      }
      case "activate": {
        const receipt = await attempt(stats, () => registry.write.activate([keys[s.node]!, ROLE_ORACLE]), core);
        if (receipt?.logs.some((l) => l.topics[0] === EVICTED)) stats.evictions++;
        break;
      }
      case "vote":
        await vote(s.node, s.epoch, s.proposal);
        break;
      case "votes":
        for (const n of s.nodes) await vote(n, s.epoch, s.proposal);
        break;
      case "reject": {
        const receipt = await attempt(stats, () => rewards.write.rejectRoot([BigInt(s.epoch)]), core);
        if (receipt) {
          check(chain[chain.length - 1]?.epoch === s.epoch, `epoch ${s.epoch} was rejected but is not the newest agreed root`);
          chain.pop();
          stats.rejections++;
        }
        break;
      }
      case "reset":
        if (await attempt(stats, () => rewards.write.resetVotes([BigInt(s.epoch)]), core)) stats.resets++;
        break;
      case "claim":
        await claim(s.epoch, s.proposal, s.leaf);
        break;
      case "claims":
        for (let leaf = 0; leaf < 3; leaf++) await claim(s.epoch, s.proposal, leaf);
        break;
      case "settle":
        for (let n = 0; n < NODES; n++) await vote(n, s.epoch, s.proposal);
        await core.networkHelpers.time.increase(Number(core.disputeWindow));
        for (let leaf = 0; leaf < 3; leaf++) await claim(s.epoch, s.proposal, leaf);
        break;
      case "time":
        if (s.seconds > 0) await core.networkHelpers.time.increase(s.seconds);
        break;
    }
    await checkBalances(world, paid.total, chain);
  }
  stats.sequences++;
}

/** At agreement: distinct voters, the quorum fixed at round start, and that many current continuous members. */
async function checkAgreement(world: World, epochNo: number, list: Hex[], sizeAtStart: bigint | undefined): Promise<void> {
  const { registry, rewards } = world.core;
  check(new Set(list).size === list.length, `epoch ${epochNo}: a node voted twice for the agreed proposal`);
  const round = await rewards.read.currentRound([BigInt(epochNo)]);
  check(sizeAtStart !== undefined, `epoch ${epochNo}: agreed in a round whose start the harness did not see`);
  check(BigInt(round.needed) === (await rewards.read.quorum([sizeAtStart!])), `epoch ${epochNo}: the quorum is not the one of the set size at round start`);
  let current = 0;
  for (const key of list) {
    const n = await registry.read.getNode([key]);
    if ((n.memberRoles & ROLE_ORACLE) !== 0 && n.oracleSince <= round.startedAt) current++;
  }
  check(current >= round.needed, `epoch ${epochNo}: agreed with ${current} current continuous members, ${round.needed} needed`);
}

async function checkBalances(world: World, paid: bigint, chain: readonly { epoch: number; total: bigint }[]): Promise<void> {
  const { registry, rewards, token } = world.core;
  const [held, bonded, unbonding, pool, reserved, totalClaimed, [hasFinal, newestFinal]] = await Promise.all([
    token.read.balanceOf([registry.address]),
    registry.read.totalBonded(),
    registry.read.totalUnbonding(),
    token.read.balanceOf([rewards.address]),
    rewards.read.totalReserved(),
    rewards.read.totalClaimed(),
    rewards.read.latestFinalEpoch(),
  ]);
  check(held === bonded + unbonding, `registry holds ${held}, owes ${bonded + unbonding}`);
  check(pool >= reserved, `pool holds ${pool}, owes ${reserved}`);
  check(totalClaimed === paid, `totalClaimed ${totalClaimed} != the claims paid ${paid}`);
  const newest = chain[chain.length - 1];
  check(reserved === (newest ? newest.total - paid : 0n), `totalReserved ${reserved} != newest cumulative total ${newest?.total ?? 0n} - paid ${paid}`);
  const finalTotal = hasFinal ? (await rewards.read.getEpoch([newestFinal])).total : 0n;
  check(paid <= finalTotal, `paid ${paid} over the newest final root's cumulative total ${finalTotal}`);
}

export function emptyStats(): InvariantStats {
  return { sequences: 0, steps: 0, refused: {}, votes: 0, agreements: 0, rejections: 0, resets: 0, claims: 0, rotations: 0, evictions: 0 };
}

/**
 * Runs `runs` random sequences (fast-check; `seed` for a replay) and returns
 * the statistics; throws fast-check's report on the first broken invariant.
 */
export async function runContractInvariants(opts: { runs: number; seed?: number; maxSteps?: number; onProgress?: (stats: InvariantStats) => void }): Promise<InvariantStats> {
  const world = await buildWorld();
  const stats = emptyStats();
  try {
    await fc.assert(
      fc.asyncProperty(fc.array(stepArb, { minLength: 3, maxLength: opts.maxSteps ?? 16 }), async (steps) => {
        await runSequence(world, steps, stats);
        if (stats.sequences % 250 === 0) opts.onProgress?.(stats);
      }),
      { numRuns: opts.runs, ...(opts.seed === undefined ? {} : { seed: opts.seed }), endOnFailure: true },
    );
  } finally {
    await world.core.connection.close?.();
  }
  return stats;
}

/** Runs the given sequences (for debugging a counterexample). */
export async function replaySequences(sequences: Step[][]): Promise<InvariantStats> {
  const world = await buildWorld();
  const stats = emptyStats();
  try {
    for (const steps of sequences) await runSequence(world, steps, stats);
  } finally {
    await world.core.connection.close?.();
  }
  return stats;
}
