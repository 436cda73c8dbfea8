// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {INodeRegistry} from "./interfaces/INodeRegistry.sol";
import {OracleVoting} from "./OracleVoting.sol";

/// @title OracleReceipts
/// @notice On-chain commitments to batches of anonymous stream-creation receipts.
/// Owns: batch records (Merkle root, receipt count, committing oracle, time) and the
/// per-batch revocation list. Holds no identities: a leaf is a receipt hash only.
/// Trusts: the NodeRegistry for who the current oracles are.
/// Revocation: the committing oracle (its signer, while still a current oracle)
/// revokes its own receipts at once; any other receipt needs a quorum of oracle
/// nodes (OracleVoting, `revocationQuorumBps`), so one oracle cannot revoke
/// another's receipts.
/// Blind keys: a current oracle signer publishes the RSA public keys (DER SPKI) it signs
/// RFC 9474 blind receipts with. A blind signature hides the message, so a key stands
/// for one parameter class (bitrate cap, maximum duration, format flags) and one validity
/// window; key id = keccak256(spki). The publishing oracle revokes its own keys. A blind
/// receipt is valid while its key is registered, unrevoked, in its window and its oracle
/// is still a current oracle (`isBlindKeyValid`).
/// @dev Leaf = keccak256(bytes.concat(keccak256(abi.encode(receiptHash)))), the
/// double-hashed OpenZeppelin StandardMerkleTree leaf; pairs are hashed sorted.
contract OracleReceipts is OracleVoting {
    /// @notice A committed batch. Slot 0: root; slot 1: oracle, time, count.
    struct Batch {
        bytes32 root;
        address oracle;
        uint64 committedAt;
        uint32 count;
    }

    /// @notice An RSA blind-signature key an oracle published, with the parameter class it signs for.
    struct BlindKey {
        address oracle;
        uint64 validFrom;
        uint64 validUntil;
        bool revoked;
        uint32 bitrateKbps;
        uint32 maxDurationSeconds;
        uint32 formatFlags;
        bytes spki;
    }

    /// @notice Shortest DER SPKI accepted (a 2048-bit RSA key is 294 bytes).
    uint256 public constant MIN_BLIND_KEY_BYTES = 256;
    /// @notice Longest DER SPKI accepted (a 4096-bit RSA key is 550 bytes).
    uint256 public constant MAX_BLIND_KEY_BYTES = 600;
    /// @notice Longest validity window of a blind key.
    uint64 public constant MAX_BLIND_KEY_VALIDITY = 30 days;

    /// @notice Quorum of oracle nodes, in basis points of the oracle set, that revokes another oracle's receipt.
    uint16 public immutable revocationQuorumBps;

    /// @notice Number of batches committed so far; batch ids run from 1 to batchCount.
    uint256 public batchCount;

    mapping(uint256 batchId => Batch) private _batches;
    mapping(uint256 batchId => mapping(bytes32 receiptHash => bool)) private _revoked;
    mapping(bytes32 keyId => BlindKey) private _blindKeys;

    /// @notice An oracle committed a batch of `count` receipts under `root`.
    event BatchCommitted(uint256 indexed batchId, address indexed oracle, bytes32 root, uint32 count);
    /// @notice A receipt of a batch was revoked; `oracle` sent the deciding transaction.
    event ReceiptRevoked(uint256 indexed batchId, bytes32 indexed receiptHash, address indexed oracle);
    /// @notice Oracle node `nodeKey` voted to revoke a receipt of another oracle's batch.
    event RevocationVoted(uint256 indexed batchId, bytes32 indexed receiptHash, bytes32 indexed nodeKey, uint256 votes);

    /// @notice Oracle `oracle` published blind key `keyId` for the given parameter class and window.
    event BlindKeyRegistered(
        bytes32 indexed keyId,
        address indexed oracle,
        uint32 bitrateKbps,
        uint32 maxDurationSeconds,
        uint32 formatFlags,
        uint64 validFrom,
        uint64 validUntil
    );
    /// @notice The publishing oracle revoked blind key `keyId`.
    event BlindKeyRevoked(bytes32 indexed keyId, address indexed oracle);

    /// @notice No batch with this id has been committed.
    error UnknownBatch(uint256 batchId);
    /// @notice A batch root must be non-zero.
    error EmptyRoot();
    /// @notice A batch must hold at least one receipt.
    error EmptyBatch();
    /// @notice The proof does not place the receipt in the batch.
    error InvalidProof(uint256 batchId, bytes32 receiptHash);
    /// @notice The receipt is already revoked.
    error AlreadyRevoked(uint256 batchId, bytes32 receiptHash);

    /// @notice A blind key with this id is already registered.
    error BlindKeyExists(bytes32 keyId);
    /// @notice No blind key with this id is registered.
    error UnknownBlindKey(bytes32 keyId);
    /// @notice The SPKI length is outside MIN_BLIND_KEY_BYTES..MAX_BLIND_KEY_BYTES.
    error InvalidBlindKeyLength(uint256 length);
    /// @notice validUntil must be after validFrom, in the future, and at most MAX_BLIND_KEY_VALIDITY later.
    error InvalidBlindKeyWindow(uint64 validFrom, uint64 validUntil);
    /// @notice Only the oracle that published a blind key revokes it.
    error NotBlindKeyOwner(bytes32 keyId, address caller);
    /// @notice The blind key is already revoked.
    error BlindKeyAlreadyRevoked(bytes32 keyId);

    /// @param registry_ The NodeRegistry (or any INodeRegistry) defining the oracle set.
    /// @param revocationQuorumBps_ Revocation quorum (1..10000), e.g. 6667.
    constructor(INodeRegistry registry_, uint16 revocationQuorumBps_) OracleVoting(registry_) {
        if (revocationQuorumBps_ == 0 || revocationQuorumBps_ > 10_000) revert InvalidQuorum(revocationQuorumBps_);
        revocationQuorumBps = revocationQuorumBps_;
    }

    /// @notice Commits a batch of `count` receipts under Merkle `root`. Current oracles only.
    /// @return batchId The new batch's id (1-based, sequential).
    function commitBatch(bytes32 root, uint32 count) external returns (uint256 batchId) {
        if (!registry.isOracleSigner(msg.sender)) revert NotOracle(msg.sender);
        if (root == bytes32(0)) revert EmptyRoot();
        if (count == 0) revert EmptyBatch();
        batchId = ++batchCount;
        _batches[batchId] = Batch({root: root, oracle: msg.sender, committedAt: uint64(block.timestamp), count: count});
        emit BatchCommitted(batchId, msg.sender, root, count);
    }

    /// @notice Revokes a receipt of a batch; the proof shows it is a real member. The
    /// batch's committing oracle revokes at once; any other current oracle node casts a
    /// vote, and the vote that brings a quorum of current oracle nodes revokes it.
    function revokeReceipt(uint256 batchId, bytes32 receiptHash, bytes32[] calldata proof) external {
        (bytes32 nodeKey, uint64 memberSince) = _oracleNode();
        Batch storage batch = _batches[batchId];
        bytes32 root = batch.root;
        if (root == bytes32(0)) revert UnknownBatch(batchId);
        if (!MerkleProof.verifyCalldata(proof, root, receiptLeaf(receiptHash))) {
            revert InvalidProof(batchId, receiptHash);
        }
        if (_revoked[batchId][receiptHash]) revert AlreadyRevoked(batchId, receiptHash);
        if (msg.sender != batch.oracle) {
            bytes32 key = keccak256(abi.encode(batchId, receiptHash));
            (uint256 votes, bool passed) = _castVote(key, key, revocationQuorumBps, nodeKey, memberSince);
            emit RevocationVoted(batchId, receiptHash, nodeKey, votes);
            if (!passed) return;
        }
        _revoked[batchId][receiptHash] = true;
        emit ReceiptRevoked(batchId, receiptHash, msg.sender);
    }

    /// @notice Votes so far to revoke a receipt of a batch. View.
    function revocationVotes(uint256 batchId, bytes32 receiptHash) external view returns (uint256) {
        return _votesFor(keccak256(abi.encode(batchId, receiptHash)));
    }

    /// @notice True when `receiptHash` is in batch `batchId` and not revoked. False for
    /// an unknown batch. View.
    function verifyReceipt(uint256 batchId, bytes32 receiptHash, bytes32[] calldata proof)
        external
        view
        returns (bool)
    {
        bytes32 root = _batches[batchId].root;
        if (root == bytes32(0) || _revoked[batchId][receiptHash]) return false;
        return MerkleProof.verifyCalldata(proof, root, receiptLeaf(receiptHash));
    }

    /// @notice True when the receipt has been revoked from the batch. View.
    function isRevoked(uint256 batchId, bytes32 receiptHash) external view returns (bool) {
        return _revoked[batchId][receiptHash];
    }

    /// @notice The batch record; reverts UnknownBatch when absent. View.
    function getBatch(uint256 batchId) external view returns (Batch memory batch) {
        batch = _batches[batchId];
        if (batch.root == bytes32(0)) revert UnknownBatch(batchId);
    }

    /// @notice Publishes an RSA blind-signature key (DER SPKI) for one parameter class and
    /// window. Current oracles only. @return keyId keccak256(spki).
    function registerBlindKey(
        bytes calldata spki,
        uint32 bitrateKbps,
        uint32 maxDurationSeconds,
        uint32 formatFlags,
        uint64 validFrom,
        uint64 validUntil
    ) external returns (bytes32 keyId) {
        if (!registry.isOracleSigner(msg.sender)) revert NotOracle(msg.sender);
        if (spki.length < MIN_BLIND_KEY_BYTES || spki.length > MAX_BLIND_KEY_BYTES) revert InvalidBlindKeyLength(spki.length);
        if (validUntil <= validFrom || validUntil <= block.timestamp || validUntil - validFrom > MAX_BLIND_KEY_VALIDITY) {
            revert InvalidBlindKeyWindow(validFrom, validUntil);
        }
        keyId = keccak256(spki);
        if (_blindKeys[keyId].oracle != address(0)) revert BlindKeyExists(keyId);
        _blindKeys[keyId] = BlindKey({
            oracle: msg.sender,
            validFrom: validFrom,
            validUntil: validUntil,
            revoked: false,
            bitrateKbps: bitrateKbps,
            maxDurationSeconds: maxDurationSeconds,
            formatFlags: formatFlags,
            spki: spki
        });
        emit BlindKeyRegistered(keyId, msg.sender, bitrateKbps, maxDurationSeconds, formatFlags, validFrom, validUntil);
    }

    /// @notice Revokes a blind key: every receipt under it stops being valid. Its publisher only.
    function revokeBlindKey(bytes32 keyId) external {
        BlindKey storage key = _blindKeys[keyId];
        if (key.oracle == address(0)) revert UnknownBlindKey(keyId);
        if (key.oracle != msg.sender) revert NotBlindKeyOwner(keyId, msg.sender);
        if (key.revoked) revert BlindKeyAlreadyRevoked(keyId);
        key.revoked = true;
        emit BlindKeyRevoked(keyId, msg.sender);
    }

    /// @notice The blind key record; reverts UnknownBlindKey when absent. View.
    function getBlindKey(bytes32 keyId) external view returns (BlindKey memory key) {
        key = _blindKeys[keyId];
        if (key.oracle == address(0)) revert UnknownBlindKey(keyId);
    }

    /// @notice True when the key is registered, unrevoked, `time` is in its window and its
    /// oracle is still a current oracle. View.
    function isBlindKeyValid(bytes32 keyId, uint64 time) external view returns (bool) {
        BlindKey storage key = _blindKeys[keyId];
        if (key.oracle == address(0) || key.revoked) return false;
        if (time < key.validFrom || time >= key.validUntil) return false;
        return registry.isOracleSigner(key.oracle);
    }

    /// @notice The Merkle leaf of a receipt hash. Pure.
    function receiptLeaf(bytes32 receiptHash) public pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(receiptHash))));
    }
}
