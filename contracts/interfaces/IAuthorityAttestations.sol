// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title IAuthorityAttestations
/// @notice The errors of an authority-attestation check, shared by the NodeRegistry
/// (which checks) and the contracts that ask it to (which re-raise them unchanged),
/// so every caller's ABI decodes them.
interface IAuthorityAttestations {
    /// @notice Fewer attestations than the current authority quorum were supplied.
    error BelowThreshold(uint256 supplied, uint256 threshold);
    /// @notice Attestation `index` is not a well-formed 65-byte low-s ECDSA signature.
    error InvalidAttestationSignature(uint256 index);
    /// @notice Attestation `index` recovers to a signer not above the previous one; sort by signer address, no duplicates.
    error SignersNotAscending(uint256 index, address signer);
    /// @notice The recovered signer is not a current authority node.
    error NotAuthority(address signer);
    /// @notice The attestations' deadline has passed; ask the authorities for fresh ones.
    error AttestationExpired(uint64 deadline, uint256 nowTimestamp);
}
