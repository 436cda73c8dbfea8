// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {INodeRegistry} from "./interfaces/INodeRegistry.sol";

/// @title BandwidthRewards
/// @notice The PSP reward pool. Owns: the pool's PSP balance, per-epoch reward roots
/// agreed by a quorum of the current oracle set, the dispute window, reservations of
/// agreed totals, and per-epoch claim bitmaps. Trusts: the PSP token (plain ERC20),
/// the NodeRegistry for the oracle set, and GOVERNANCE_ROLE to reject bad roots.
/// @dev Epoch e covers [genesis + e*epochLength, genesis + (e+1)*epochLength).
/// Lifecycle: Open -> Voting (epoch ended) -> Disputable (a proposal reached quorum;
/// its total is reserved) -> Final (dispute window over; computed from time, no tx).
/// rejectRoot sends a Disputable epoch back to Voting with a fresh voting round.
/// Claim leaf = keccak256(bytes.concat(keccak256(abi.encode(index, account, amount)))).
/// Claims look the agreed root up by the root their proof computes
/// (keccak256(abi.encode(epoch, root)) => agreedAt), one cold slot instead of the
/// epoch record's two; at most one root per epoch is ever in that table.
/// Invariant: token.balanceOf(this) >= totalReserved (claims reduce both equally).
contract BandwidthRewards is AccessControl {
    using SafeERC20 for IERC20;

    /// @notice May reject a root in its dispute window and reset a stuck vote.
    bytes32 public constant GOVERNANCE_ROLE = keccak256("GOVERNANCE_ROLE");

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

    /// @notice The PSP token paid out.
    IERC20 public immutable token;
    /// @notice The registry defining the oracle set.
    INodeRegistry public immutable registry;
    /// @notice Start of epoch 0 (unix seconds).
    uint64 public immutable genesis;
    /// @notice Epoch length in seconds.
    uint64 public immutable epochLength;
    /// @notice Seconds after agreement during which governance may reject a root.
    uint64 public immutable disputeWindow;
    /// @notice Quorum in basis points of the current oracle set size (ceil, at least 1 vote).
    uint16 public immutable quorumBps;

    /// @notice Sum of agreed totals not yet claimed.
    uint256 public totalReserved;

    mapping(uint256 epoch => Epoch) private _epochs;
    /// @dev keccak256(abi.encode(epoch, root)) => agreedAt of the epoch's agreed root (0: none).
    /// Mirrors _epochs[epoch].root/agreedAt so a claim reads one slot; written only on
    /// agreement and rejection.
    mapping(bytes32 rootKey => uint256 agreedAt) private _agreedRoots;
    /// @dev keccak256(epoch, round, oracle) => voted.
    mapping(bytes32 voteKey => bool) private _voted;
    /// @dev keccak256(epoch, round, root, total) => votes.
    mapping(bytes32 proposalKey => uint256) private _proposalVotes;
    mapping(uint256 epoch => mapping(uint256 word => uint256)) private _claimedBitmap;

    /// @notice Someone added `amount` PSP to the pool through `fund`.
    event Funded(address indexed from, uint256 amount);
    /// @notice An oracle voted for (root, total) for an epoch's round.
    event RootVoted(
        uint256 indexed epoch, uint32 indexed round, address indexed oracle, bytes32 root, uint256 total, uint256 votes
    );
    /// @notice A proposal reached quorum: `total` is reserved, disputable until `disputeEndsAt`.
    event RootAgreed(uint256 indexed epoch, uint32 indexed round, bytes32 root, uint256 total, uint64 disputeEndsAt);
    /// @notice Governance rejected the agreed root; voting restarts in `newRound`.
    event RootRejected(uint256 indexed epoch, bytes32 root, uint256 total, uint32 newRound);
    /// @notice Governance discarded the votes of an epoch that had no agreed root.
    event VotesReset(uint256 indexed epoch, uint32 newRound);
    /// @notice `amount` was paid to `account` for leaf `index` of `epoch`.
    event Claimed(uint256 indexed epoch, uint256 index, address indexed account, uint256 amount);

    /// @notice Amounts must be non-zero.
    error ZeroAmount();
    /// @notice epochLength must be non-zero.
    error ZeroEpochLength();
    /// @notice quorumBps must be in 1..10000.
    error InvalidQuorum(uint16 quorumBps);
    /// @notice The chain time is before genesis.
    error BeforeGenesis(uint64 genesis);
    /// @notice Roots can only be submitted once the epoch has ended.
    error EpochNotEnded(uint256 epoch, uint256 endsAt);
    /// @notice A reward root must be non-zero.
    error EmptyRoot();
    /// @notice The caller is not the signer of a node in the current oracle set.
    error NotOracle(address caller);
    /// @notice This oracle already voted in the epoch's current round.
    error AlreadyVoted(uint256 epoch, address oracle);
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
    /// @notice Paying this claim would exceed the reserved total (the root over-allocates).
    error ClaimExceedsReserve(uint256 amount, uint256 reserved);

    /// @param token_ The PSP token.
    /// @param registry_ The registry defining the oracle set.
    /// @param admin Receives DEFAULT_ADMIN_ROLE and GOVERNANCE_ROLE.
    /// @param genesis_ Start of epoch 0.
    /// @param epochLength_ Epoch length in seconds (> 0).
    /// @param disputeWindow_ Dispute window in seconds.
    /// @param quorumBps_ Quorum in basis points of the oracle set (1..10000), e.g. 6667.
    constructor(
        IERC20 token_,
        INodeRegistry registry_,
        address admin,
        uint64 genesis_,
        uint64 epochLength_,
        uint64 disputeWindow_,
        uint16 quorumBps_
    ) {
        if (epochLength_ == 0) revert ZeroEpochLength();
        if (quorumBps_ == 0 || quorumBps_ > 10_000) revert InvalidQuorum(quorumBps_);
        token = token_;
        registry = registry_;
        genesis = genesis_;
        epochLength = epochLength_;
        disputeWindow = disputeWindow_;
        quorumBps = quorumBps_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(GOVERNANCE_ROLE, admin);
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

    /// @notice Votes for (root, total) as the reward tree of an ended epoch. Current
    /// oracles only, one vote per oracle per round. The vote that brings a proposal to
    /// ceil(oracleCount * quorumBps / 10000) (at least 1) agrees it: `total` is reserved
    /// from the unallocated balance and the dispute window opens. Gas is independent of
    /// the number of leaves in the tree.
    function submitRoot(uint256 epoch, bytes32 root, uint256 total) external {
        uint256 endsAt = epochEnd(epoch);
        if (block.timestamp < endsAt) revert EpochNotEnded(epoch, endsAt);
        if (root == bytes32(0)) revert EmptyRoot();
        (bool isMember, uint256 setSize) = registry.oracleMembership(msg.sender);
        if (!isMember) revert NotOracle(msg.sender);
        Epoch storage record = _epochs[epoch];
        if (record.agreedAt != 0) revert RootAlreadyAgreed(epoch);
        uint32 round = record.round;

        bytes32 voteKey = keccak256(abi.encode(epoch, round, msg.sender));
        if (_voted[voteKey]) revert AlreadyVoted(epoch, msg.sender);
        _voted[voteKey] = true;
        bytes32 proposalKey = keccak256(abi.encode(epoch, round, root, total));
        uint256 votes = _proposalVotes[proposalKey] + 1;
        _proposalVotes[proposalKey] = votes;
        emit RootVoted(epoch, round, msg.sender, root, total, votes);

        if (votes >= quorum(setSize)) {
            uint256 available = unallocated();
            if (total > available) revert InsufficientUnallocated(total, available);
            record.root = root;
            record.total = SafeCast.toUint128(total);
            record.agreedAt = uint64(block.timestamp);
            _agreedRoots[_rootKey(epoch, root)] = block.timestamp;
            totalReserved += total;
            emit RootAgreed(epoch, round, root, total, uint64(block.timestamp) + disputeWindow);
        }
    }

    /// @notice Rejects an epoch's agreed root inside its dispute window: the total is
    /// unreserved and oracles vote again in a fresh round. GOVERNANCE_ROLE.
    function rejectRoot(uint256 epoch) external onlyRole(GOVERNANCE_ROLE) {
        EpochStatus status = epochStatus(epoch);
        if (status != EpochStatus.Disputable) revert WrongEpochStatus(epoch, status);
        Epoch storage record = _epochs[epoch];
        bytes32 root = record.root;
        uint256 total = record.total;
        uint32 newRound = record.round + 1;
        totalReserved -= total;
        record.root = bytes32(0);
        record.total = 0;
        record.agreedAt = 0;
        record.round = newRound;
        delete _agreedRoots[_rootKey(epoch, root)];
        emit RootRejected(epoch, root, total, newRound);
    }

    /// @notice Discards the votes of an ended epoch without an agreed root (e.g. split
    /// votes that can no longer reach quorum); oracles vote again. GOVERNANCE_ROLE.
    function resetVotes(uint256 epoch) external onlyRole(GOVERNANCE_ROLE) {
        EpochStatus status = epochStatus(epoch);
        if (status != EpochStatus.Voting) revert WrongEpochStatus(epoch, status);
        uint32 newRound = ++_epochs[epoch].round;
        emit VotesReset(epoch, newRound);
    }

    // ---------------------------------------------------------------- claims

    /// @notice Pays `amount` to `account` for leaf `index` of a final epoch root. Anyone
    /// may submit the claim; the tokens always go to `account`.
    /// Reverts RootNotFinal when the epoch has no final root, InvalidProof when the
    /// proof does not lead to it, AlreadyClaimed for a second claim of a leaf.
    /// @dev Kept minimal for gas: the proof's root is looked up (one slot: agreed and
    /// final?), then one bitmap word, the reserve, one transfer. Reading the epoch
    /// record instead would cost a second cold slot.
    function claim(uint256 epoch, uint256 index, address account, uint256 amount, bytes32[] calldata proof)
        external
    {
        mapping(uint256 => uint256) storage bitmap = _claimedBitmap[epoch];
        uint256 wordIndex = index >> 8;
        uint256 bit = 1 << (index & 0xff);
        uint256 word = bitmap[wordIndex];
        // A set bit implies the epoch's root was final when it was set, and a final root never changes.
        if (word & bit != 0) revert AlreadyClaimed(epoch, index);

        bytes32 leaf = keccak256(bytes.concat(keccak256(abi.encode(index, account, amount))));
        uint256 agreedAt = _agreedRoots[_rootKey(epoch, MerkleProof.processProofCalldata(proof, leaf))];
        if (agreedAt == 0 || block.timestamp < agreedAt + disputeWindow) _revertClaimNotPayable(epoch, index);

        bitmap[wordIndex] = word | bit;
        uint256 reserved = totalReserved;
        if (amount > reserved) revert ClaimExceedsReserve(amount, reserved);
        unchecked {
            totalReserved = reserved - amount;
        }
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

    /// @notice Votes so far for (root, total) in the epoch's current round. View.
    function proposalVotes(uint256 epoch, bytes32 root, uint256 total) external view returns (uint256) {
        return _proposalVotes[keccak256(abi.encode(epoch, _epochs[epoch].round, root, total))];
    }

    /// @notice True when `oracle` voted in the epoch's current round. View.
    function hasVoted(uint256 epoch, address oracle) external view returns (bool) {
        return _voted[keccak256(abi.encode(epoch, _epochs[epoch].round, oracle))];
    }

    /// @notice Votes needed for an oracle set of `setSize`: ceil(setSize*quorumBps/10000), at least 1. View.
    function quorum(uint256 setSize) public view returns (uint256) {
        uint256 needed = (setSize * quorumBps + 9_999) / 10_000;
        return needed == 0 ? 1 : needed;
    }

    /// @notice True when leaf `index` of `epoch` was claimed. View.
    function isClaimed(uint256 epoch, uint256 index) external view returns (bool) {
        return _claimedBitmap[epoch][index >> 8] & (1 << (index & 0xff)) != 0;
    }

    /// @notice True when `root` is the agreed (disputable or final) root of `epoch`. View.
    function isAgreedRoot(uint256 epoch, bytes32 root) external view returns (bool) {
        return _agreedRoots[_rootKey(epoch, root)] != 0;
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

    /// @dev The claim's proof did not lead to a final agreed root: name the cause.
    function _revertClaimNotPayable(uint256 epoch, uint256 index) private view {
        if (epochStatus(epoch) != EpochStatus.Final) revert RootNotFinal(epoch);
        revert InvalidProof(epoch, index);
    }
}
