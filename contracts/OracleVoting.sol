// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {INodeRegistry} from "./interfaces/INodeRegistry.sol";

/// @title OracleVoting
/// @notice Quorum votes of the oracle set, shared by BandwidthRewards (epoch roots)
/// and OracleReceipts (receipt revocations).
/// @dev One node, one vote per round, whatever its signer: votes are keyed by the
/// node key the NodeRegistry maps the caller's signer to. A round's first vote fixes
/// its start time and its quorum, ceil(oracleCount * quorumBps / 10000) (at least 1),
/// so leaving cannot shrink it. Only nodes in the oracle set since before the round
/// started may vote, so at most the set at that time ever votes (which bounds every
/// loop below), and a proposal passes only when a quorum of its voters are still
/// current members that never left since the round started: a coalition cannot vote
/// and leave, nor leave and come back as new members, to make up a quorum.
abstract contract OracleVoting {
    /// @notice The registry defining the oracle set.
    INodeRegistry public immutable registry;

    /// @notice A voting round: when its first vote came and the votes it needs.
    struct Round {
        uint64 startedAt;
        uint32 needed;
    }

    mapping(bytes32 roundKey => Round) private _rounds;
    mapping(bytes32 roundKey => mapping(bytes32 nodeKey => bool)) private _votedIn;
    mapping(bytes32 proposalKey => bytes32[]) private _voters;

    /// @notice The caller's address is not the signer of a node in the current oracle set.
    error NotOracle(address caller);
    /// @notice This node already voted in this round (under this or an earlier signer).
    error AlreadyVoted(bytes32 nodeKey);
    /// @notice The node joined the oracle set after the round started: it votes from the next round.
    error JoinedAfterRoundStart(bytes32 nodeKey, uint64 memberSince, uint64 roundStartedAt);
    /// @notice quorumBps must be in 1..10000.
    error InvalidQuorum(uint16 quorumBps);

    constructor(INodeRegistry registry_) {
        registry = registry_;
    }

    /// @notice Votes needed for an oracle set of `setSize` under `quorumBps`: ceil, at least 1. Pure.
    function _quorumOf(uint256 setSize, uint16 quorumBps) internal pure returns (uint256) {
        uint256 needed = (setSize * quorumBps + 9_999) / 10_000;
        return needed == 0 ? 1 : needed;
    }

    /// @dev The caller's oracle node, or NotOracle.
    function _oracleNode() internal view returns (bytes32 nodeKey, uint64 memberSince) {
        (nodeKey, memberSince) = registry.oracleNodeOf(msg.sender);
        if (nodeKey == bytes32(0)) revert NotOracle(msg.sender);
    }

    /// @dev Records the vote of oracle node `nodeKey` (from `_oracleNode`) for `proposalKey` in `roundKey`.
    /// @return votes votes cast for the proposal so far
    /// @return passed a quorum of the proposal's voters are current, continuous members
    function _castVote(bytes32 roundKey, bytes32 proposalKey, uint16 quorumBps, bytes32 nodeKey, uint64 memberSince)
        internal
        returns (uint256 votes, bool passed)
    {
        Round memory round = _rounds[roundKey];
        if (round.startedAt == 0) {
            round = Round({
                startedAt: uint64(block.timestamp),
                needed: uint32(_quorumOf(registry.oracleCount(), quorumBps))
            });
            _rounds[roundKey] = round;
        }
        if (memberSince > round.startedAt) revert JoinedAfterRoundStart(nodeKey, memberSince, round.startedAt);
        if (_votedIn[roundKey][nodeKey]) revert AlreadyVoted(nodeKey);
        _votedIn[roundKey][nodeKey] = true;
        bytes32[] storage voters = _voters[proposalKey];
        voters.push(nodeKey);
        votes = voters.length;
        passed = votes >= round.needed && registry.countOraclesMemberSince(voters, round.startedAt) >= round.needed;
    }

    /// @dev The round record (zero before its first vote).
    function _round(bytes32 roundKey) internal view returns (Round memory) {
        return _rounds[roundKey];
    }

    /// @dev True when `nodeKey` voted in the round.
    function _hasVoted(bytes32 roundKey, bytes32 nodeKey) internal view returns (bool) {
        return _votedIn[roundKey][nodeKey];
    }

    /// @dev Votes cast for a proposal.
    function _votesFor(bytes32 proposalKey) internal view returns (uint256) {
        return _voters[proposalKey].length;
    }
}
