// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title INodeRegistry
/// @notice The read surface other PSP contracts use to ask who the current
/// authority, oracle and discovery nodes are. Membership is by a node's EVM
/// signer address: the key a node uses for EIP-712 attestations and for oracle
/// transactions.
interface INodeRegistry {
    /// @notice True when `signer` belongs to a node in the current authority set.
    function isAuthoritySigner(address signer) external view returns (bool);

    /// @notice True when `signer` belongs to a node in the current oracle set.
    function isOracleSigner(address signer) external view returns (bool);

    /// @notice Size of the current authority set.
    function authorityCount() external view returns (uint256);

    /// @notice Size of the current oracle set.
    function oracleCount() external view returns (uint256);

    /// @notice `isOracleSigner(signer)` and `oracleCount()` computed in one pass over
    /// the oracle candidates, for contracts that need both (quorum votes).
    function oracleMembership(address signer) external view returns (bool isMember, uint256 setSize);
}
