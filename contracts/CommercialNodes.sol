// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";
import {EnumerableSet} from "@openzeppelin/contracts/utils/structs/EnumerableSet.sol";
import {IdentityRegistry} from "./IdentityRegistry.sol";
import {NodeRegistry} from "./NodeRegistry.sol";

/// @title CommercialNodes
/// @notice The PKI store's list of an application's commercial nodes (whitepaper §5):
/// which registered, staked nodes serve an application's custom protocol, under which
/// service names. Owns: one publication per (application, node) with its service names,
/// the operator it was consented under and when.
/// Trusts: IdentityRegistry for who owns an application and who its registrars are;
/// NodeRegistry for a node's operator, EVM signer and onion eligibility (registered,
/// onion role, bonded at least minStakeOnion).
/// @dev Consent: a node serves an application only when its current EVM signer signed
/// the EIP-712 `ServeConsent` (application, node, services, nonce, deadline); the
/// nonce is per signer and used once, so a consent cannot be replayed (after a removal,
/// publishing again needs a fresh one). Removal: the application's owner or registrars,
/// or the node's operator or signer (a node withdraws its consent). A publication counts
/// (`isServing`) only while the node is onion-eligible and still has the operator it
/// was consented under: a deregistered, unstaked or reclaimed node drops out at once,
/// without a transaction; `prune` lets anyone clear such a stale entry.
contract CommercialNodes is EIP712, Nonces {
    using EnumerableSet for EnumerableSet.Bytes32Set;

    /// @notice EIP-712 type a node's signer signs to serve an application.
    bytes32 public constant SERVE_CONSENT_TYPEHASH =
        keccak256("ServeConsent(bytes32 appId,bytes32 nodeKey,string[] services,uint256 nonce,uint64 deadline)");
    /// @notice Most nodes one application may publish.
    uint256 public constant MAX_NODES_PER_APP = 32;
    /// @notice Most applications one node may serve (the descriptor carries at most this many).
    uint256 public constant MAX_APPS_PER_NODE = 8;
    /// @notice Most service names per publication.
    uint256 public constant MAX_SERVICES = 16;
    /// @notice Longest service name, in bytes ([a-z0-9-], like application names).
    uint256 public constant MAX_SERVICE_NAME_LENGTH = 32;
    /// @notice NodeRegistry's onion role bit: a commercial node is reached as a circuit's last hop.
    uint8 public constant ROLE_ONION = 1;

    /// @notice One application's publication of one node.
    struct Publication {
        address operator;
        uint64 publishedAt;
        string[] services;
    }

    /// @notice The identity registry (application owners and registrars).
    IdentityRegistry public immutable identities;
    /// @notice The node registry (operators, signers, stakes).
    NodeRegistry public immutable nodes;

    mapping(bytes32 appId => EnumerableSet.Bytes32Set) private _nodesOf;
    mapping(bytes32 nodeKey => EnumerableSet.Bytes32Set) private _appsOf;
    mapping(bytes32 appId => mapping(bytes32 nodeKey => Publication)) private _publications;

    /// @notice `nodeKey` serves `appId` under `services` (a new publication or a replacement).
    event NodePublished(bytes32 indexed appId, bytes32 indexed nodeKey, address indexed operator, string[] services, address publisher);
    /// @notice `nodeKey` no longer serves `appId`; `by` removed it (anyone, for a stale entry).
    event NodeRemoved(bytes32 indexed appId, bytes32 indexed nodeKey, address indexed by);

    /// @notice No application has this id.
    error ApplicationNotFound(bytes32 appId);
    /// @notice Only the application's owner or registrars may publish its nodes.
    error NotApplicationManager(bytes32 appId, address caller);
    /// @notice The node is not registered with the onion role and its minimum stake.
    error NodeNotEligible(bytes32 nodeKey);
    /// @notice The consent does not recover to the node's current signer.
    error InvalidServeConsent(bytes32 nodeKey, address signer);
    /// @notice The consent's deadline has passed.
    error ConsentExpired(uint64 deadline, uint256 nowTimestamp);
    /// @notice The application already publishes MAX_NODES_PER_APP nodes.
    error TooManyNodes(bytes32 appId, uint256 max);
    /// @notice The node already serves MAX_APPS_PER_NODE applications.
    error TooManyApplications(bytes32 nodeKey, uint256 max);
    /// @notice A publication names 1..MAX_SERVICES services.
    error InvalidServiceCount(uint256 count);
    /// @notice A service name is 1..32 bytes of [a-z0-9-]; `offendingIndex` is the bad byte (or the length).
    error InvalidServiceName(string name, uint256 offendingIndex);
    /// @notice A service name is listed twice.
    error DuplicateService(string name);
    /// @notice The application does not publish this node.
    error NotPublished(bytes32 appId, bytes32 nodeKey);
    /// @notice Only the application's managers or the node's operator or signer may remove it.
    error NotAllowedToRemove(bytes32 appId, bytes32 nodeKey, address caller);
    /// @notice `prune` only clears publications that no longer count.
    error StillServing(bytes32 appId, bytes32 nodeKey);

    /// @param identities_ the IdentityRegistry whose applications are served
    /// @param nodes_ the NodeRegistry whose nodes serve them
    constructor(IdentityRegistry identities_, NodeRegistry nodes_) EIP712("PSP CommercialNodes", "1") {
        identities = identities_;
        nodes = nodes_;
    }

    // ---------------------------------------------------------------- changes

    /// @notice Publishes (or re-publishes with new services) `nodeKey` as a commercial node of
    /// `appId`. Caller: the application's owner or a registrar.
    /// @param appId the application (IdentityRegistry.applicationIdOf)
    /// @param nodeKey the node's Ed25519 identity key, registered and onion-eligible
    /// @param services 1..MAX_SERVICES distinct names the node serves for the application
    /// @param deadline last second the consent is valid
    /// @param consent the node signer's 65-byte EIP-712 signature over
    /// `serveConsentDigest(appId, nodeKey, services, nonces(signer), deadline)`
    function publishNode(
        bytes32 appId,
        bytes32 nodeKey,
        string[] calldata services,
        uint64 deadline,
        bytes calldata consent
    ) external {
        _requireManager(appId);
        _checkServices(services);
        if (!nodes.isEligible(nodeKey, ROLE_ONION)) revert NodeNotEligible(nodeKey);
        NodeRegistry.NodeInfo memory info = nodes.getNode(nodeKey);
        if (block.timestamp > deadline) revert ConsentExpired(deadline, block.timestamp);
        bytes32 digest = serveConsentDigest(appId, nodeKey, services, _useNonce(info.signer), deadline);
        (address recovered, ECDSA.RecoverError err,) = ECDSA.tryRecoverCalldata(digest, consent);
        if (err != ECDSA.RecoverError.NoError || recovered != info.signer) revert InvalidServeConsent(nodeKey, info.signer);

        if (_nodesOf[appId].add(nodeKey)) {
            if (_nodesOf[appId].length() > MAX_NODES_PER_APP) revert TooManyNodes(appId, MAX_NODES_PER_APP);
            _appsOf[nodeKey].add(appId);
            if (_appsOf[nodeKey].length() > MAX_APPS_PER_NODE) revert TooManyApplications(nodeKey, MAX_APPS_PER_NODE);
        }
        Publication storage p = _publications[appId][nodeKey];
        p.operator = info.operator;
        p.publishedAt = uint64(block.timestamp);
        delete p.services;
        for (uint256 i = 0; i < services.length; ++i) p.services.push(services[i]);
        emit NodePublished(appId, nodeKey, info.operator, services, msg.sender);
    }

    /// @notice Removes `nodeKey` from `appId`'s commercial nodes. Caller: the application's
    /// owner or a registrar, or the node's current operator or signer (withdrawing consent).
    /// @param appId the application
    /// @param nodeKey the node
    function removeNode(bytes32 appId, bytes32 nodeKey) external {
        if (!_nodesOf[appId].contains(nodeKey)) revert NotPublished(appId, nodeKey);
        if (!_isManager(appId, msg.sender) && !_isNodeController(nodeKey, msg.sender)) revert NotAllowedToRemove(appId, nodeKey, msg.sender);
        _remove(appId, nodeKey);
    }

    /// @notice Clears a publication that no longer counts (the node deregistered, lost its
    /// stake or onion role, or changed operator). Anyone.
    /// @param appId the application
    /// @param nodeKey the node
    function prune(bytes32 appId, bytes32 nodeKey) external {
        if (!_nodesOf[appId].contains(nodeKey)) revert NotPublished(appId, nodeKey);
        if (isServing(appId, nodeKey)) revert StillServing(appId, nodeKey);
        _remove(appId, nodeKey);
    }

    // ---------------------------------------------------------------- views

    /// @notice True when `appId` publishes `nodeKey` and the publication counts now: the node
    /// is onion-eligible and has the operator it was consented under. View.
    /// @param appId the application
    /// @param nodeKey the node
    /// @return whether the node serves the application now
    function isServing(bytes32 appId, bytes32 nodeKey) public view returns (bool) {
        Publication storage p = _publications[appId][nodeKey];
        if (p.operator == address(0) || !nodes.isEligible(nodeKey, ROLE_ONION)) return false;
        return nodes.getNode(nodeKey).operator == p.operator;
    }

    /// @notice Every node `appId` publishes, stale ones included. View.
    /// @param appId the application
    /// @return nodeKeys the published nodes
    function nodesOf(bytes32 appId) external view returns (bytes32[] memory nodeKeys) {
        return _nodesOf[appId].values();
    }

    /// @notice The nodes serving `appId` now (`isServing`). View.
    /// @param appId the application
    /// @return nodeKeys the serving nodes
    function servingNodesOf(bytes32 appId) external view returns (bytes32[] memory nodeKeys) {
        bytes32[] memory all = _nodesOf[appId].values();
        bool[] memory keep = new bool[](all.length);
        uint256 n = 0;
        for (uint256 i = 0; i < all.length; ++i) if ((keep[i] = isServing(appId, all[i]))) ++n;
        return _select(all, keep, n);
    }

    /// @notice The applications `nodeKey` serves now (`isServing`): what discovery nodes check
    /// a descriptor's claim against. View.
    /// @param nodeKey the node
    /// @return appIds the applications
    function servingAppsOf(bytes32 nodeKey) external view returns (bytes32[] memory appIds) {
        bytes32[] memory all = _appsOf[nodeKey].values();
        bool[] memory keep = new bool[](all.length);
        uint256 n = 0;
        for (uint256 i = 0; i < all.length; ++i) if ((keep[i] = isServing(all[i], nodeKey))) ++n;
        return _select(all, keep, n);
    }

    /// @notice The publication of `nodeKey` by `appId` (operator zero when none). View.
    /// @param appId the application
    /// @param nodeKey the node
    /// @return the publication
    function publicationOf(bytes32 appId, bytes32 nodeKey) external view returns (Publication memory) {
        return _publications[appId][nodeKey];
    }

    /// @notice The EIP-712 `ServeConsent` digest a node's signer signs. View.
    /// @param appId the application
    /// @param nodeKey the node
    /// @param services the service names
    /// @param nonce `nonces(signer)` at signing time
    /// @param deadline last valid second
    /// @return the digest
    function serveConsentDigest(
        bytes32 appId,
        bytes32 nodeKey,
        string[] calldata services,
        uint256 nonce,
        uint64 deadline
    ) public view returns (bytes32) {
        bytes32[] memory hashes = new bytes32[](services.length);
        for (uint256 i = 0; i < services.length; ++i) hashes[i] = keccak256(bytes(services[i]));
        bytes32 servicesHash = keccak256(abi.encodePacked(hashes));
        return _hashTypedDataV4(keccak256(abi.encode(SERVE_CONSENT_TYPEHASH, appId, nodeKey, servicesHash, nonce, deadline)));
    }

    // ---------------------------------------------------------------- internals

    function _select(bytes32[] memory all, bool[] memory keep, uint256 n) private pure returns (bytes32[] memory out) {
        out = new bytes32[](n);
        uint256 j = 0;
        for (uint256 i = 0; i < all.length; ++i) if (keep[i]) out[j++] = all[i];
    }

    function _remove(bytes32 appId, bytes32 nodeKey) private {
        _nodesOf[appId].remove(nodeKey);
        _appsOf[nodeKey].remove(appId);
        delete _publications[appId][nodeKey];
        emit NodeRemoved(appId, nodeKey, msg.sender);
    }

    function _requireManager(bytes32 appId) private view {
        if (identities.applicationOwner(appId) == address(0)) revert ApplicationNotFound(appId);
        if (!_isManager(appId, msg.sender)) revert NotApplicationManager(appId, msg.sender);
    }

    /// @dev IdentityRegistry.isRegistrar counts the owner, and only the current owner's registrars.
    function _isManager(bytes32 appId, address account) private view returns (bool) {
        return identities.isRegistrar(appId, account);
    }

    function _isNodeController(bytes32 nodeKey, address account) private view returns (bool) {
        if (!nodes.isRegistered(nodeKey)) return false;
        NodeRegistry.NodeInfo memory info = nodes.getNode(nodeKey);
        return account == info.operator || account == info.signer;
    }

    function _checkServices(string[] calldata services) private pure {
        if (services.length == 0 || services.length > MAX_SERVICES) revert InvalidServiceCount(services.length);
        for (uint256 i = 0; i < services.length; ++i) {
            bytes calldata b = bytes(services[i]);
            if (b.length == 0 || b.length > MAX_SERVICE_NAME_LENGTH) revert InvalidServiceName(services[i], b.length);
            for (uint256 j = 0; j < b.length; ++j) {
                bytes1 c = b[j];
                bool ok = (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c == 0x2d;
                if (!ok) revert InvalidServiceName(services[i], j);
            }
            for (uint256 k = 0; k < i; ++k) {
                if (keccak256(b) == keccak256(bytes(services[k]))) revert DuplicateService(services[i]);
            }
        }
    }
}
