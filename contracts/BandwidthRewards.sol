// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {INodeRegistry} from "./interfaces/INodeRegistry.sol";
import {OracleVoting} from "./OracleVoting.sol";

/// @title BandwidthRewards
/// @notice The PSP reward pool. Owns: the pool's PSP balance, the reward roots agreed by
/// a quorum of oracle nodes (OracleVoting), the dispute window, and what each account
/// has claimed so far. Trusts: the PSP token (plain ERC20), the NodeRegistry for the
/// oracle set, and GUARDIAN_ROLE to reject bad roots inside their dispute window and to
/// reset stuck votes.
/// @dev Epoch e covers [genesis + e*epochLength, genesis + (e+1)*epochLength).
/// Roots are CUMULATIVE: the root agreed for epoch e commits to every account's total
/// earnings over all settled epochs up to and including e, leaf =
/// keccak256(bytes.concat(keccak256(abi.encode(account, cumulativeAmount)))), and to
/// their sum `cumulativeTotal`. Agreed roots form a chain: each one's epoch is later than
/// the previous one's (skipped epochs are covered by the next root) and is voted only
/// once the previous root is Final, so at most the newest agreed root is ever Disputable.
/// Agreement reserves the increment over the previous cumulativeTotal. A claim pays
/// cumulativeAmount - claimed[account] against the newest Final root, so one claim
/// covers every epoch since the account's last claim, at a gas cost independent of how
/// many epochs that is.
/// Lifecycle of an epoch: Open -> Voting (ended) -> Disputable (a proposal reached
/// quorum) -> Final (dispute window over; computed from time, no tx); Voting -> Covered
/// when a later epoch's root is agreed first; rejectRoot sends a Disputable epoch back to
/// Voting with a fresh round (and the epochs it covered back to Voting too).
/// Invariants: totalClaimed <= cumulativeTotal of the newest Final root <= that of the
/// newest agreed root; token.balanceOf(this) >= totalReserved() =
/// newest agreed cumulativeTotal - totalClaimed.
contract BandwidthRewards is OracleVoting, AccessControl {
    using SafeERC20 for IERC20;

    /// @notice May reject a root in its dispute window and reset a stuck vote. Both only
    /// delay payouts, never move funds, so this role can act faster than governance.
    bytes32 public constant GUARDIAN_ROLE = keccak256("GUARDIAN_ROLE");

    /// @notice Where an epoch is in its lifecycle. Covered: the epoch has no root of its
    /// own but a later epoch's agreed root covers it (cumulative roots), so it is not voted.
    enum EpochStatus {
        Open,
        Voting,
        Disputable,
        Final,
        Covered
    }

    /// @notice Per-epoch record. Slot 0: root; slot 1: total, agreedAt, round.
    /// `total` is the root's cumulativeTotal. agreedAt == 0 means no agreed root (block
    /// timestamps are never 0).
    struct Epoch {
        bytes32 root;
        uint128 total;
        uint64 agreedAt;
        uint32 round;
    }

    /// @dev The one global slot a claim reads and rewrites. Epochs are stored plus one
    /// (0: none); an ended epoch is below 2^64 - 1, so epoch + 1 fits.
    struct Head {
        uint128 totalClaimed;
        uint64 lastAgreedPlusOne;
        uint64 previousAgreedPlusOne;
    }

    /// @notice The PSP token paid out.
    IERC20 public immutable token;
    /// @notice Start of epoch 0 (unix seconds).
    uint64 public immutable genesis;
    /// @notice Epoch length in seconds.
    uint64 public immutable epochLength;
    /// @notice Seconds after agreement during which the guardian may reject a root.
    uint64 public immutable disputeWindow;
    /// @notice Quorum in basis points of the oracle set size at the round's first vote (ceil, at least 1 vote).
    uint16 public immutable quorumBps;

    Head private _head;
    mapping(uint256 epoch => Epoch) private _epochs;
    /// @notice The cumulative amount already paid to `account` (its leaf's amount at its last claim).
    mapping(address account => uint256) public claimed;

    /// @notice Someone added `amount` PSP to the pool through `fund`.
    event Funded(address indexed from, uint256 amount);
    /// @notice Oracle node `nodeKey` (signing as `oracle`) voted for (root, cumulativeTotal) in an epoch's round.
    event RootVoted(
        uint256 indexed epoch,
        uint32 indexed round,
        bytes32 indexed nodeKey,
        address oracle,
        bytes32 root,
        uint256 cumulativeTotal,
        uint256 votes
    );
    /// @notice A proposal reached quorum: `reserved` (its increment over the previous
    /// agreed cumulativeTotal) is reserved, disputable until `disputeEndsAt`.
    event RootAgreed(
        uint256 indexed epoch, uint32 indexed round, bytes32 root, uint256 cumulativeTotal, uint256 reserved, uint64 disputeEndsAt
    );
    /// @notice The guardian rejected the agreed root; voting restarts in `newRound` and
    /// the previous agreed root (if any) is the newest again.
    event RootRejected(uint256 indexed epoch, bytes32 root, uint256 cumulativeTotal, uint32 newRound);
    /// @notice The guardian discarded the votes of an epoch that had no agreed root.
    event VotesReset(uint256 indexed epoch, uint32 newRound);
    /// @notice `amount` was paid to `account` against `epoch`'s root; its claimed cumulative amount is now `cumulativeAmount`.
    event Claimed(address indexed account, uint256 epoch, uint256 amount, uint256 cumulativeAmount);

    /// @notice Amounts must be non-zero.
    error ZeroAmount();
    /// @notice epochLength must be non-zero.
    error ZeroEpochLength();
    /// @notice The dispute window must fit in the registry's minimum unbonding delay, so voters stay slashable.
    error DisputeWindowTooLong(uint64 disputeWindow, uint64 minUnbondingDelay);
    /// @notice The chain time is before genesis.
    error BeforeGenesis(uint64 genesis);
    /// @notice Roots can only be submitted once the epoch has ended.
    error EpochNotEnded(uint256 epoch, uint256 endsAt);
    /// @notice A reward root must be non-zero.
    error EmptyRoot();
    /// @notice The epoch already has an agreed root (disputable or final).
    error RootAlreadyAgreed(uint256 epoch);
    /// @notice A root for `lastAgreedEpoch`, at or after this epoch, is agreed: it covers this epoch.
    error EpochCovered(uint256 epoch, uint256 lastAgreedEpoch);
    /// @notice The newest agreed root is still disputable: the next root is voted once it is final, at `finalAt`.
    error PreviousRootNotFinal(uint256 previousEpoch, uint256 finalAt);
    /// @notice A cumulative total below the previous agreed one (cumulative amounts never go down).
    error CumulativeTotalDecreased(uint256 cumulativeTotal, uint256 previousTotal);
    /// @notice The pool's unallocated balance cannot cover the agreed root's increment.
    error InsufficientUnallocated(uint256 increment, uint256 available);
    /// @notice The epoch is not in the status this call needs.
    error WrongEpochStatus(uint256 epoch, EpochStatus status);
    /// @notice The epoch has no final root (none agreed, or still disputable).
    error RootNotFinal(uint256 epoch);
    /// @notice The epoch's root is final but a newer final root replaced it: claim against `newestFinalEpoch`.
    error RootSuperseded(uint256 epoch, uint256 newestFinalEpoch);
    /// @notice The proof does not place (account, cumulativeAmount) under the epoch's root.
    error InvalidProof(uint256 epoch, address account);
    /// @notice The account already claimed `alreadyClaimed`, at least this cumulative amount.
    error NothingToClaim(address account, uint256 cumulativeAmount, uint256 alreadyClaimed);
    /// @notice The claim pays more than the root's cumulativeTotal minus every claim paid so far (the root over-allocates).
    error ClaimExceedsRootTotal(uint256 epoch, uint256 amount, uint256 remaining);

    /// @param token_ The PSP token.
    /// @param registry_ The registry defining the oracle set.
    /// @param admin Receives DEFAULT_ADMIN_ROLE and GUARDIAN_ROLE.
    /// @param genesis_ Start of epoch 0.
    /// @param epochLength_ Epoch length in seconds (> 0).
    /// @param disputeWindow_ Dispute window in seconds, at most registry_.minUnbondingDelay().
    /// @param quorumBps_ Quorum in basis points of the oracle set (1..10000), e.g. 6667.
    constructor(
        IERC20 token_,
        INodeRegistry registry_,
        address admin,
        uint64 genesis_,
        uint64 epochLength_,
        uint64 disputeWindow_,
        uint16 quorumBps_
    ) OracleVoting(registry_) {
        if (epochLength_ == 0) revert ZeroEpochLength();
        if (quorumBps_ == 0 || quorumBps_ > 10_000) revert InvalidQuorum(quorumBps_);
        uint64 minUnbonding = registry_.minUnbondingDelay();
        if (disputeWindow_ > minUnbonding) revert DisputeWindowTooLong(disputeWindow_, minUnbonding);
        token = token_;
        genesis = genesis_;
        epochLength = epochLength_;
        disputeWindow = disputeWindow_;
        quorumBps = quorumBps_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(GUARDIAN_ROLE, admin);
    }

    // ---------------------------------------------------------------- funding

    /// @notice Adds `amount` PSP to the pool from the caller (needs an allowance).
    /// Plain transfers to this contract are pool funds too.
    function fund(uint256 amount) external {
        if (amount == 0) revert ZeroAmount();
        emit Funded(msg.sender, amount);
        token.safeTransferFrom(msg.sender, address(this), amount);
    }

    // ---------------------------------------------------------------- settlement

    /// @notice Votes for (root, cumulativeTotal) as the cumulative reward tree up to and
    /// including an ended epoch, one vote per oracle node per round (OracleVoting: the
    /// round's first vote fixes its quorum; only nodes in the set since before that vote
    /// count, and only while they stay). The epoch must come after the newest agreed one
    /// (EpochCovered), that root must be Final (PreviousRootNotFinal), and cumulativeTotal
    /// must not be below its total (CumulativeTotalDecreased). The vote that brings the
    /// proposal to quorum agrees it: the increment over the previous cumulativeTotal is
    /// reserved from the unallocated balance and the dispute window opens. Gas is
    /// independent of the number of leaves and of the number of staked candidates.
    function submitRoot(uint256 epoch, bytes32 root, uint256 cumulativeTotal) external {
        uint256 endsAt = epochEnd(epoch);
        if (block.timestamp < endsAt) revert EpochNotEnded(epoch, endsAt);
        if (root == bytes32(0)) revert EmptyRoot();
        (bytes32 nodeKey, uint64 memberSince) = _oracleNode();
        Epoch storage record = _epochs[epoch];
        if (record.agreedAt != 0) revert RootAlreadyAgreed(epoch);
        uint256 previousTotal = _checkSuccessor(epoch, cumulativeTotal);
        uint32 round = record.round;

        (uint256 votes, bool passed) = _castVote(
            _roundKey(epoch, round), _proposalKey(epoch, round, root, cumulativeTotal), quorumBps, nodeKey, memberSince
        );
        emit RootVoted(epoch, round, nodeKey, msg.sender, root, cumulativeTotal, votes);
        if (passed) _agree(record, epoch, round, root, cumulativeTotal, previousTotal);
    }

    /// @notice Rejects the newest agreed root inside its dispute window: its increment is
    /// released, the previous agreed root is the newest again, and oracles vote again in a
    /// fresh round. GUARDIAN_ROLE.
    /// @dev Only the newest agreed root can be Disputable (the next is voted once it is
    /// Final), and no claim ever paid against it (claims need a Final root).
    function rejectRoot(uint256 epoch) external onlyRole(GUARDIAN_ROLE) {
        EpochStatus status = epochStatus(epoch);
        if (status != EpochStatus.Disputable) revert WrongEpochStatus(epoch, status);
        Epoch storage record = _epochs[epoch];
        bytes32 root = record.root;
        uint256 total = record.total;
        uint32 newRound = record.round + 1;
        record.root = bytes32(0);
        record.total = 0;
        record.agreedAt = 0;
        record.round = newRound;
        Head memory head = _head;
        // The restored newest root is Final: its successor could only be voted once it was.
        head.lastAgreedPlusOne = head.previousAgreedPlusOne;
        head.previousAgreedPlusOne = 0;
        _head = head;
        emit RootRejected(epoch, root, total, newRound);
    }

    /// @notice Discards the votes of an ended epoch without an agreed root (split votes,
    /// or a round whose fixed quorum can no longer be met); oracles vote again in a fresh
    /// round with a fresh quorum. GUARDIAN_ROLE.
    function resetVotes(uint256 epoch) external onlyRole(GUARDIAN_ROLE) {
        EpochStatus status = epochStatus(epoch);
        if (status != EpochStatus.Voting) revert WrongEpochStatus(epoch, status);
        uint32 newRound = ++_epochs[epoch].round;
        emit VotesReset(epoch, newRound);
    }

    // ---------------------------------------------------------------- claims

    /// @notice Pays `account` what its cumulative amount under the newest Final root
    /// (`epoch`) adds to what it already claimed: cumulativeAmount - claimed[account].
    /// Anyone may submit the claim; the tokens always go to `account`.
    /// Reverts RootNotFinal when `epoch` has no final root, RootSuperseded when a newer
    /// root is final, InvalidProof when the proof does not lead to the root,
    /// NothingToClaim when nothing is new, ClaimExceedsRootTotal when the pool's total
    /// claims would pass the root's cumulativeTotal.
    /// @dev Kept minimal for gas whatever the number of epochs covered: one global slot
    /// (read and rewritten), the epoch record (two slots), one per-account slot, one transfer.
    function claim(uint256 epoch, address account, uint256 cumulativeAmount, bytes32[] calldata proof) external {
        Epoch storage record = _epochs[epoch];
        uint256 agreedAt = record.agreedAt;
        if (!_isNewestFinal(epoch, agreedAt)) _revertNotClaimable(epoch);
        bytes32 leaf = keccak256(bytes.concat(keccak256(abi.encode(account, cumulativeAmount))));
        if (!MerkleProof.verifyCalldata(proof, record.root, leaf)) revert InvalidProof(epoch, account);
        uint256 already = claimed[account];
        if (cumulativeAmount <= already) revert NothingToClaim(account, cumulativeAmount, already);
        uint256 amount;
        unchecked {
            amount = cumulativeAmount - already; // cumulativeAmount > already
        }
        uint256 claimedBefore = _head.totalClaimed;
        // The claimed root is the newest Final one, and claims only ever went against Final
        // roots no newer than it, whose totals it does not go below: totalClaimed <= total
        // (checked anyway: should that ever fail, claims stop instead of paying unbounded).
        uint256 remaining = uint256(record.total) - claimedBefore;
        if (amount > remaining) revert ClaimExceedsRootTotal(epoch, amount, remaining);
        claimed[account] = cumulativeAmount;
        _head.totalClaimed = uint128(claimedBefore + amount); // <= the root's uint128 total
        emit Claimed(account, epoch, amount, cumulativeAmount);
        token.safeTransfer(account, amount);
    }

    // ---------------------------------------------------------------- views

    /// @notice Start time of `epoch`; type(uint256).max for epochs beyond 2^64 (never). View.
    function epochStart(uint256 epoch) public view returns (uint256) {
        if (epoch > type(uint64).max) return type(uint256).max;
        return uint256(genesis) + epoch * epochLength;
    }

    /// @notice End time of `epoch` (the start of the next one). View.
    function epochEnd(uint256 epoch) public view returns (uint256) {
        return epochStart(epoch == type(uint256).max ? epoch : epoch + 1);
    }

    /// @notice The epoch containing the current block time; reverts BeforeGenesis before it. View.
    function currentEpoch() external view returns (uint256) {
        if (block.timestamp < genesis) revert BeforeGenesis(genesis);
        return (block.timestamp - genesis) / epochLength;
    }

    /// @notice Lifecycle status of `epoch` at the current block time. View.
    function epochStatus(uint256 epoch) public view returns (EpochStatus) {
        uint256 agreedAt = _epochs[epoch].agreedAt;
        if (agreedAt != 0) {
            return block.timestamp < agreedAt + disputeWindow ? EpochStatus.Disputable : EpochStatus.Final;
        }
        if (block.timestamp < epochEnd(epoch)) return EpochStatus.Open;
        uint256 lastPlusOne = _head.lastAgreedPlusOne;
        return lastPlusOne != 0 && epoch < lastPlusOne - 1 ? EpochStatus.Covered : EpochStatus.Voting;
    }

    /// @notice The epoch record (root and total are zero without an agreed root). View.
    function getEpoch(uint256 epoch) external view returns (Epoch memory) {
        return _epochs[epoch];
    }

    /// @notice True once any root was agreed (and not rejected). View.
    function hasAgreedRoot() external view returns (bool) {
        return _head.lastAgreedPlusOne != 0;
    }

    /// @notice The epoch of the newest agreed (disputable or final) root; 0 when none (see hasAgreedRoot). View.
    function lastAgreedEpoch() external view returns (uint256) {
        uint256 plusOne = _head.lastAgreedPlusOne;
        return plusOne == 0 ? 0 : plusOne - 1;
    }

    /// @notice The epoch whose root claims go against now: the newest Final root. View.
    /// @return exists false while no root is final
    /// @return epoch that root's epoch (0 when none)
    function latestFinalEpoch() public view returns (bool exists, uint256 epoch) {
        Head memory head = _head;
        if (head.lastAgreedPlusOne == 0) return (false, 0);
        uint256 last = head.lastAgreedPlusOne - 1;
        if (block.timestamp >= uint256(_epochs[last].agreedAt) + disputeWindow) return (true, last);
        if (head.previousAgreedPlusOne == 0) return (false, 0);
        return (true, head.previousAgreedPlusOne - 1);
    }

    /// @notice What a claim of (account, cumulativeAmount) would pay, proof aside: 0 when nothing is new. View.
    function claimable(address account, uint256 cumulativeAmount) external view returns (uint256) {
        uint256 already = claimed[account];
        return cumulativeAmount > already ? cumulativeAmount - already : 0;
    }

    /// @notice Sum of every claim paid so far. View.
    function totalClaimed() external view returns (uint256) {
        return _head.totalClaimed;
    }

    /// @notice What the pool owes: the newest agreed root's cumulativeTotal minus what was claimed. View.
    function totalReserved() public view returns (uint256) {
        Head memory head = _head;
        if (head.lastAgreedPlusOne == 0) return 0;
        return uint256(_epochs[head.lastAgreedPlusOne - 1].total) - head.totalClaimed;
    }

    /// @notice The current round of `epoch`: when its first vote came (0: none yet) and the votes it needs. View.
    function currentRound(uint256 epoch) external view returns (Round memory) {
        return _round(_roundKey(epoch, _epochs[epoch].round));
    }

    /// @notice Votes so far for (root, cumulativeTotal) in the epoch's current round. View.
    function proposalVotes(uint256 epoch, bytes32 root, uint256 cumulativeTotal) external view returns (uint256) {
        return _votesFor(_proposalKey(epoch, _epochs[epoch].round, root, cumulativeTotal));
    }

    /// @notice True when oracle node `nodeKey` voted in the epoch's current round. View.
    function hasVoted(uint256 epoch, bytes32 nodeKey) external view returns (bool) {
        return _hasVoted(_roundKey(epoch, _epochs[epoch].round), nodeKey);
    }

    /// @notice Votes needed for an oracle set of `setSize`: ceil(setSize*quorumBps/10000), at least 1. View.
    function quorum(uint256 setSize) external view returns (uint256) {
        return _quorumOf(setSize, quorumBps);
    }

    /// @notice Pool balance not reserved for agreed roots. View.
    function unallocated() public view returns (uint256) {
        uint256 balance = token.balanceOf(address(this));
        uint256 reserved = totalReserved();
        return balance > reserved ? balance - reserved : 0;
    }

    // ---------------------------------------------------------------- internal

    function _roundKey(uint256 epoch, uint32 round) private pure returns (bytes32) {
        return keccak256(abi.encode(epoch, round));
    }

    function _proposalKey(uint256 epoch, uint32 round, bytes32 root, uint256 total) private pure returns (bytes32) {
        return keccak256(abi.encode(epoch, round, root, total));
    }

    /// @dev A root for `epoch` may follow the newest agreed one: later epoch, that root
    /// Final, total not lower and within uint128. Returns the newest agreed cumulativeTotal (0: none).
    function _checkSuccessor(uint256 epoch, uint256 cumulativeTotal) private view returns (uint256 previousTotal) {
        uint256 lastPlusOne = _head.lastAgreedPlusOne;
        if (lastPlusOne != 0) {
            uint256 last = lastPlusOne - 1;
            if (epoch <= last) revert EpochCovered(epoch, last);
            Epoch storage previous = _epochs[last];
            uint256 finalAt = uint256(previous.agreedAt) + disputeWindow;
            if (block.timestamp < finalAt) revert PreviousRootNotFinal(last, finalAt);
            previousTotal = previous.total;
        }
        if (cumulativeTotal < previousTotal) revert CumulativeTotalDecreased(cumulativeTotal, previousTotal);
        SafeCast.toUint128(cumulativeTotal);
    }

    /// @dev The passing vote: reserves the increment, records the root, makes it the newest agreed.
    function _agree(
        Epoch storage record,
        uint256 epoch,
        uint32 round,
        bytes32 root,
        uint256 cumulativeTotal,
        uint256 previousTotal
    ) private {
        uint256 increment = cumulativeTotal - previousTotal;
        uint256 available = unallocated();
        if (increment > available) revert InsufficientUnallocated(increment, available);
        record.root = root;
        record.total = uint128(cumulativeTotal); // checked by _checkSuccessor
        record.agreedAt = uint64(block.timestamp);
        Head memory head = _head;
        head.previousAgreedPlusOne = head.lastAgreedPlusOne;
        // The epoch ended, so genesis + (epoch + 1) * epochLength <= block.timestamp < 2^64.
        head.lastAgreedPlusOne = uint64(epoch + 1);
        _head = head;
        emit RootAgreed(epoch, round, root, cumulativeTotal, increment, uint64(block.timestamp) + disputeWindow);
    }

    /// @dev True when `epoch` (agreed at `agreedAt`) holds the newest Final root: the newest
    /// agreed one once its window is over, else the previous agreed one (Final by construction).
    function _isNewestFinal(uint256 epoch, uint256 agreedAt) private view returns (bool) {
        if (agreedAt == 0) return false;
        uint256 lastPlusOne = _head.lastAgreedPlusOne;
        // agreedAt != 0: the epoch has an agreed root, so it ended and epoch + 1 < 2^64.
        if (epoch + 1 == lastPlusOne) return block.timestamp >= agreedAt + disputeWindow;
        if (epoch + 1 != _head.previousAgreedPlusOne) return false;
        return block.timestamp < uint256(_epochs[lastPlusOne - 1].agreedAt) + disputeWindow;
    }

    /// @dev `epoch` is not the newest Final root: name the cause.
    function _revertNotClaimable(uint256 epoch) private view {
        (bool exists, uint256 newest) = latestFinalEpoch();
        if (exists && epoch < newest && epochStatus(epoch) == EpochStatus.Final) revert RootSuperseded(epoch, newest);
        revert RootNotFinal(epoch);
    }
}
