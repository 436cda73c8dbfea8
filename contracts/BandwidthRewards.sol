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
/// @notice The PSP reward pool. Owns: the pool's PSP balance, per-epoch reward roots
/// agreed by a quorum of oracle nodes (OracleVoting), the dispute window, each agreed
/// epoch's remaining reserve, and per-epoch claim bitmaps. Trusts: the PSP token
/// (plain ERC20), the NodeRegistry for the oracle set, and GUARDIAN_ROLE to reject
/// bad roots inside their dispute window and to reset stuck votes.
/// @dev Epoch e covers [genesis + e*epochLength, genesis + (e+1)*epochLength).
/// Lifecycle: Open -> Voting (epoch ended) -> Disputable (a proposal reached quorum;
/// its total is reserved) -> Final (dispute window over; computed from time, no tx).
/// rejectRoot sends a Disputable epoch back to Voting with a fresh voting round.
/// Claim leaf = keccak256(bytes.concat(keccak256(abi.encode(index, account, amount)))).
/// Claims look the agreed root up by the root their proof computes: one slot,
/// keccak256(abi.encode(epoch, root)) => agreedAt << 192 | remaining, where remaining
/// starts at the agreed total and each claim lowers it, so no epoch ever pays more
/// than its own total. At most one root per epoch is ever in that table.
/// Invariants: token.balanceOf(this) >= totalReserved == sum of remaining reserves.
contract BandwidthRewards is OracleVoting, AccessControl {
    using SafeERC20 for IERC20;

    /// @notice May reject a root in its dispute window and reset a stuck vote. Both only
    /// delay payouts, never move funds, so this role can act faster than governance.
    bytes32 public constant GUARDIAN_ROLE = keccak256("GUARDIAN_ROLE");

    /// @notice Where an epoch is in its lifecycle.
    enum EpochStatus {
        Open,
        Voting,
        Disputable,
        Final
    }

    /// @notice Per-epoch record. Slot 0: root; slot 1: total, agreedAt, round.
    /// agreedAt == 0 means no agreed root (block timestamps are never 0).
    struct Epoch {
        bytes32 root;
        uint128 total;
        uint64 agreedAt;
        uint32 round;
    }

    uint256 private constant REMAINING_MASK = (1 << 192) - 1;

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

    /// @notice Sum of the agreed epochs' remaining reserves.
    uint256 public totalReserved;

    mapping(uint256 epoch => Epoch) private _epochs;
    /// @dev keccak256(abi.encode(epoch, root)) => agreedAt << 192 | remaining reserve (0: none).
    mapping(bytes32 rootKey => uint256 entry) private _agreedRoots;
    mapping(uint256 epoch => mapping(uint256 word => uint256)) private _claimedBitmap;

    /// @notice Someone added `amount` PSP to the pool through `fund`.
    event Funded(address indexed from, uint256 amount);
    /// @notice Oracle node `nodeKey` (signing as `oracle`) voted for (root, total) in an epoch's round.
    event RootVoted(
        uint256 indexed epoch,
        uint32 indexed round,
        bytes32 indexed nodeKey,
        address oracle,
        bytes32 root,
        uint256 total,
        uint256 votes
    );
    /// @notice A proposal reached quorum: `total` is reserved, disputable until `disputeEndsAt`.
    event RootAgreed(uint256 indexed epoch, uint32 indexed round, bytes32 root, uint256 total, uint64 disputeEndsAt);
    /// @notice The guardian rejected the agreed root; voting restarts in `newRound`.
    event RootRejected(uint256 indexed epoch, bytes32 root, uint256 total, uint32 newRound);
    /// @notice The guardian discarded the votes of an epoch that had no agreed root.
    event VotesReset(uint256 indexed epoch, uint32 newRound);
    /// @notice `amount` was paid to `account` for leaf `index` of `epoch`.
    event Claimed(uint256 indexed epoch, uint256 index, address indexed account, uint256 amount);

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
    /// @notice The pool's unallocated balance cannot cover the agreed total.
    error InsufficientUnallocated(uint256 total, uint256 available);
    /// @notice The epoch is not in the status this call needs.
    error WrongEpochStatus(uint256 epoch, EpochStatus status);
    /// @notice The epoch's root is not final yet (or there is none).
    error RootNotFinal(uint256 epoch);
    /// @notice This leaf was already claimed.
    error AlreadyClaimed(uint256 epoch, uint256 index);
    /// @notice The proof does not place (index, account, amount) under the epoch root.
    error InvalidProof(uint256 epoch, uint256 index);
    /// @notice Paying this claim would exceed what the epoch's agreed total has left (the root over-allocates).
    error ClaimExceedsEpochReserve(uint256 epoch, uint256 amount, uint256 remaining);

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

    /// @notice Votes for (root, total) as the reward tree of an ended epoch, one vote per
    /// oracle node per round (OracleVoting: the round's first vote fixes its quorum; only
    /// nodes in the set since before that vote count, and only while they stay). The vote
    /// that brings the proposal to quorum agrees it: `total` is reserved from the
    /// unallocated balance as the epoch's reserve and the dispute window opens. Gas is
    /// independent of the number of leaves and of the number of staked candidates.
    function submitRoot(uint256 epoch, bytes32 root, uint256 total) external {
        uint256 endsAt = epochEnd(epoch);
        if (block.timestamp < endsAt) revert EpochNotEnded(epoch, endsAt);
        if (root == bytes32(0)) revert EmptyRoot();
        (bytes32 nodeKey, uint64 memberSince) = _oracleNode();
        Epoch storage record = _epochs[epoch];
        if (record.agreedAt != 0) revert RootAlreadyAgreed(epoch);
        uint32 round = record.round;

        (uint256 votes, bool passed) =
            _castVote(_roundKey(epoch, round), _proposalKey(epoch, round, root, total), quorumBps, nodeKey, memberSince);
        emit RootVoted(epoch, round, nodeKey, msg.sender, root, total, votes);
        if (!passed) return;

        uint256 available = unallocated();
        if (total > available) revert InsufficientUnallocated(total, available);
        record.root = root;
        record.total = SafeCast.toUint128(total);
        record.agreedAt = uint64(block.timestamp);
        _agreedRoots[_rootKey(epoch, root)] = (block.timestamp << 192) | total;
        totalReserved += total;
        emit RootAgreed(epoch, round, root, total, uint64(block.timestamp) + disputeWindow);
    }

    /// @notice Rejects an epoch's agreed root inside its dispute window: its reserve is
    /// released and oracles vote again in a fresh round. GUARDIAN_ROLE.
    function rejectRoot(uint256 epoch) external onlyRole(GUARDIAN_ROLE) {
        EpochStatus status = epochStatus(epoch);
        if (status != EpochStatus.Disputable) revert WrongEpochStatus(epoch, status);
        Epoch storage record = _epochs[epoch];
        bytes32 root = record.root;
        uint256 total = record.total;
        uint32 newRound = record.round + 1;
        bytes32 rootKey = _rootKey(epoch, root);
        // No claim is possible while disputable, so the remaining reserve is the whole total.
        totalReserved -= _agreedRoots[rootKey] & REMAINING_MASK;
        record.root = bytes32(0);
        record.total = 0;
        record.agreedAt = 0;
        record.round = newRound;
        delete _agreedRoots[rootKey];
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

    /// @notice Pays `amount` to `account` for leaf `index` of a final epoch root. Anyone
    /// may submit the claim; the tokens always go to `account`.
    /// Reverts RootNotFinal when the epoch has no final root, InvalidProof when the
    /// proof does not lead to it, AlreadyClaimed for a second claim of a leaf,
    /// ClaimExceedsEpochReserve when the epoch's remaining reserve cannot cover it.
    /// @dev Kept minimal for gas: the proof's root is looked up (one slot: agreed, final,
    /// remaining), then one bitmap word, the pool-wide reserve, one transfer.
    function claim(uint256 epoch, uint256 index, address account, uint256 amount, bytes32[] calldata proof)
        external
    {
        // A set bit implies the epoch's root was final when it was set, and a final root never changes.
        _markClaimed(epoch, index);
        bytes32 leaf = keccak256(bytes.concat(keccak256(abi.encode(index, account, amount))));
        _spendReserve(epoch, index, MerkleProof.processProofCalldata(proof, leaf), amount);
        emit Claimed(epoch, index, account, amount);
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
        return block.timestamp < epochEnd(epoch) ? EpochStatus.Open : EpochStatus.Voting;
    }

    /// @notice The epoch record (root and total are zero without an agreed root). View.
    function getEpoch(uint256 epoch) external view returns (Epoch memory) {
        return _epochs[epoch];
    }

    /// @notice The current round of `epoch`: when its first vote came (0: none yet) and the votes it needs. View.
    function currentRound(uint256 epoch) external view returns (Round memory) {
        return _round(_roundKey(epoch, _epochs[epoch].round));
    }

    /// @notice Votes so far for (root, total) in the epoch's current round. View.
    function proposalVotes(uint256 epoch, bytes32 root, uint256 total) external view returns (uint256) {
        return _votesFor(_proposalKey(epoch, _epochs[epoch].round, root, total));
    }

    /// @notice True when oracle node `nodeKey` voted in the epoch's current round. View.
    function hasVoted(uint256 epoch, bytes32 nodeKey) external view returns (bool) {
        return _hasVoted(_roundKey(epoch, _epochs[epoch].round), nodeKey);
    }

    /// @notice Votes needed for an oracle set of `setSize`: ceil(setSize*quorumBps/10000), at least 1. View.
    function quorum(uint256 setSize) external view returns (uint256) {
        return _quorumOf(setSize, quorumBps);
    }

    /// @notice True when leaf `index` of `epoch` was claimed. View.
    function isClaimed(uint256 epoch, uint256 index) external view returns (bool) {
        return _claimedBitmap[epoch][index >> 8] & (1 << (index & 0xff)) != 0;
    }

    /// @notice True when `root` is the agreed (disputable or final) root of `epoch`. View.
    function isAgreedRoot(uint256 epoch, bytes32 root) external view returns (bool) {
        return _agreedRoots[_rootKey(epoch, root)] != 0;
    }

    /// @notice What the agreed root of `epoch` may still pay (0 without one). View.
    function remainingReserve(uint256 epoch) external view returns (uint256) {
        return _agreedRoots[_rootKey(epoch, _epochs[epoch].root)] & REMAINING_MASK;
    }

    /// @notice Pool balance not reserved for agreed roots. View.
    function unallocated() public view returns (uint256) {
        uint256 balance = token.balanceOf(address(this));
        return balance > totalReserved ? balance - totalReserved : 0;
    }

    // ---------------------------------------------------------------- internal

    function _rootKey(uint256 epoch, bytes32 root) private pure returns (bytes32) {
        return keccak256(abi.encode(epoch, root));
    }

    function _roundKey(uint256 epoch, uint32 round) private pure returns (bytes32) {
        return keccak256(abi.encode(epoch, round));
    }

    function _proposalKey(uint256 epoch, uint32 round, bytes32 root, uint256 total) private pure returns (bytes32) {
        return keccak256(abi.encode(epoch, round, root, total));
    }

    /// @dev Sets the leaf's claim bit, or AlreadyClaimed.
    function _markClaimed(uint256 epoch, uint256 index) private {
        mapping(uint256 => uint256) storage bitmap = _claimedBitmap[epoch];
        uint256 wordIndex = index >> 8;
        uint256 bit = 1 << (index & 0xff);
        uint256 word = bitmap[wordIndex];
        if (word & bit != 0) revert AlreadyClaimed(epoch, index);
        bitmap[wordIndex] = word | bit;
    }

    /// @dev Takes `amount` from the remaining reserve of `epoch`'s final root `root`.
    function _spendReserve(uint256 epoch, uint256 index, bytes32 root, uint256 amount) private {
        bytes32 rootKey = _rootKey(epoch, root);
        uint256 entry = _agreedRoots[rootKey];
        uint256 agreedAt = entry >> 192;
        if (agreedAt == 0 || block.timestamp < agreedAt + disputeWindow) _revertClaimNotPayable(epoch, index);
        uint256 remaining = entry & REMAINING_MASK;
        if (amount > remaining) revert ClaimExceedsEpochReserve(epoch, amount, remaining);
        unchecked {
            // amount <= remaining <= totalReserved (the sum of every epoch's remaining reserve).
            _agreedRoots[rootKey] = entry - amount;
            totalReserved -= amount;
        }
    }

    /// @dev The claim's proof did not lead to a final agreed root: name the cause.
    function _revertClaimNotPayable(uint256 epoch, uint256 index) private view {
        if (epochStatus(epoch) != EpochStatus.Final) revert RootNotFinal(epoch);
        revert InvalidProof(epoch, index);
    }
}
