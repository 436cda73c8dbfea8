// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IAuthorityAttestations} from "./IAuthorityAttestations.sol";

/// @title INodeRegistry
/// @notice The read surface other PSP contracts use to ask who the current
/// authority, oracle and discovery nodes are. Membership is by a node's EVM
/// signer address: the key a node uses for EIP-712 attestations and for oracle
/// transactions. Every answer is an O(1) storage read: the registry maintains
/// each capped set on every stake, role, approval and parameter change.
interface INodeRegistry is IAuthorityAttestations {
    /// @notice True when `signer` belongs to a node in the current authority set.
    function isAuthoritySigner(address signer) external view returns (bool);

    /// @notice True when `signer` belongs to a node in the current oracle set.
    function isOracleSigner(address signer) external view returns (bool);

    /// @notice Size of the current authority set.
    function authorityCount() external view returns (uint256);

    /// @notice Size of the current oracle set.
    function oracleCount() external view returns (uint256);

    /// @notice The node whose signer is `signer` and the time it last joined the
    /// oracle set; (0, 0) when that node is not a current oracle. Votes are counted
    /// per node key, so a signer change never gives a node a second voice.
    function oracleNodeOf(address signer) external view returns (bytes32 nodeKey, uint64 memberSince);

    /// @notice How many of `nodeKeys` are current oracles that joined at or before
    /// `since` and stayed in the set since (a node that left and came back counts
    /// from its return). Used to count only current members' votes.
    function countOraclesMemberSince(bytes32[] calldata nodeKeys, uint64 since) external view returns (uint256);

    /// @notice Distinct current authorities an attestation needs:
    /// max(attestationFloor, ceil(authorityCount * attestationBps / 10000)).
    function authorityQuorum() external view returns (uint256);

    /// @notice Reverts unless `attestations` are 65-byte ECDSA signatures over
    /// `digest` by at least authorityQuorum() distinct current authority signers,
    /// in strictly ascending signer order (every one must be a current authority).
    function checkAuthorityAttestations(bytes32 digest, bytes[] calldata attestations) external view;

    /// @notice Lower bound of the unbonding delay, fixed at deployment: contracts that
    /// rely on this stake for a dispute window (BandwidthRewards) must not exceed it.
    function minUnbondingDelay() external view returns (uint64);
}
