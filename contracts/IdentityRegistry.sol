// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {INodeRegistry} from "./interfaces/INodeRegistry.sol";
import {IAuthorityAttestations} from "./interfaces/IAuthorityAttestations.sol";

/// @title IdentityRegistry
/// @notice The PSP on-chain PKI. Owns namespaces, applications and identities
/// `<namespace>.<application>.<kind>.<ed25519 key>`, each owned by an EVM account.
///
/// Possession of an identity's Ed25519 key is proven off chain to the authority
/// nodes; each one that checked it signs an EIP-712 `IdentityAttestation` over the
/// owner, names, kind, key and a deadline. This contract trusts the INodeRegistry
/// to say who the current authority signers are and how many must attest (the
/// authority quorum: a fraction of the current set with a floor), and nothing
/// else: the registry checks the signatures, presented in strictly ascending
/// signer order. The owner is inside the signed data, so an
/// attestation copied from the mempool can only ever register the key to the same
/// owner. A key rotation is attested with its own EIP-712 type,
/// `KeyRotationAttestation`, naming the owner, the identity being rotated, the
/// new key and a deadline, so registration and rotation attestations can never
/// be swapped (a rotation seen in the mempool cannot be front-run into a
/// separate registration of the new key).
///
/// Consent: the key's Ed25519 signature over the digest (its proof of possession)
/// travels with every registration, rotation and reclaim and is published in a
/// `KeyConsent` event, so anyone can check whether the key consented. When it did
/// not (a quorum of authorities attested without a valid proof), the key's holder
/// takes the identity back with `reclaimIdentity`, attested by a quorum of current
/// authorities that checked the published proof fails and the reclaim proof holds.
///
/// Identity state machine: None -> Active -> (Rotated | Revoked). Rotated and
/// Revoked are terminal for the owner; an identity id that ever existed can never
/// be registered again, so a revoked key stays revoked. Only a reclaim (proven
/// missing consent) returns an identity to Active, under the key holder.
contract IdentityRegistry is IAuthorityAttestations, EIP712 {
    /// @notice Who may register identities under an application.
    /// Open: anyone (the attestations alone decide).
    /// Restricted: the caller or the identity owner must be an approved registrar
    /// of the application (the application owner always is one).
    enum RegistrationPolicy {
        Open,
        Restricted
    }

    /// @notice Lifecycle of an identity. None means the id was never registered.
    enum IdentityStatus {
        None,
        Active,
        Rotated,
        Revoked
    }

    /// @notice What a registration (and each attestation) states. `kind`: 0 account, 1 node, 2 group.
    struct Registration {
        address owner;
        string namespace;
        string application;
        uint8 kind;
        bytes32 key;
        uint64 deadline;
    }

    /// @notice Which consent a `KeyConsent` event records (and so the Ed25519 prefix signed).
    enum ConsentKind {
        Registration,
        Rotation,
        Reclaim
    }

    /// @notice A registered application under a namespace. `registrarGeneration` counts
    /// transfers: registrar approvals of earlier generations no longer count.
    struct Application {
        address owner;
        RegistrationPolicy policy;
        uint32 registrarGeneration;
        bytes32 namespaceHash;
        bytes32 nameHash;
        string namespace;
        string name;
    }

    /// @notice A registered identity. `successor` is set once the identity is Rotated;
    /// `reclaims` counts reclaims (a reclaim attestation names the count it contests).
    struct Identity {
        address owner;
        IdentityStatus status;
        uint8 kind;
        uint64 registeredAt;
        uint16 reclaims;
        bytes32 applicationId;
        bytes32 key;
        bytes32 successor;
    }

    /// @notice EIP-712 type hash of the attestation each authority signs.
    bytes32 public constant ATTESTATION_TYPEHASH =
        keccak256(
            "IdentityAttestation(address owner,string namespace,string application,uint8 kind,bytes32 key,uint64 deadline)"
        );

    /// @notice EIP-712 type hash of the attestation each authority signs for a key rotation.
    /// A distinct type, so a rotation's attestations can never be replayed through
    /// registerIdentity (nor a registration's through rotateKey).
    bytes32 public constant ROTATION_TYPEHASH =
        keccak256("KeyRotationAttestation(address owner,bytes32 identityId,bytes32 newKey,uint64 deadline)");

    /// @notice EIP-712 type hash of the attestation each authority signs to hand an identity
    /// registered without its key's consent to the key's holder.
    bytes32 public constant RECLAIM_TYPEHASH =
        keccak256("IdentityReclaim(bytes32 identityId,uint16 contestedReclaims,address newOwner,uint64 deadline)");

    /// @notice Length of an Ed25519 signature (a key proof).
    uint256 public constant KEY_PROOF_LENGTH = 64;

    /// @notice Highest valid identity kind (0 account, 1 node, 2 group).
    uint8 public constant MAX_KIND = 2;

    /// @notice Longest namespace or application name, in bytes.
    uint256 public constant MAX_NAME_LENGTH = 32;

    /// @notice The staking registry that says who the current authority signers are.
    INodeRegistry public immutable nodeRegistry;

    /// @notice Owner of each namespace, keyed by keccak256(bytes(namespace)).
    mapping(bytes32 namespaceHash => address owner) public namespaceOwner;

    mapping(bytes32 applicationId => Application) private _applications;
    mapping(bytes32 applicationId => mapping(uint32 generation => mapping(address account => bool approved)))
        private _registrars;
    mapping(bytes32 identityId => Identity) private _identities;

    /// @notice A namespace was claimed.
    event NamespaceRegistered(bytes32 indexed namespaceHash, string namespace, address indexed owner);
    /// @notice A namespace changed hands.
    event NamespaceTransferred(bytes32 indexed namespaceHash, address indexed previousOwner, address indexed newOwner);
    /// @notice An application was created under a namespace.
    event ApplicationRegistered(
        bytes32 indexed applicationId,
        bytes32 indexed namespaceHash,
        string namespace,
        string application,
        address indexed owner,
        RegistrationPolicy policy
    );
    /// @notice An application's registration policy changed.
    event ApplicationPolicyChanged(bytes32 indexed applicationId, RegistrationPolicy policy);
    /// @notice An application changed hands.
    event ApplicationTransferred(bytes32 indexed applicationId, address indexed previousOwner, address indexed newOwner);
    /// @notice A registrar was approved or removed for a Restricted application.
    event RegistrarSet(bytes32 indexed applicationId, address indexed account, bool approved);
    /// @notice A new identity became Active.
    event IdentityRegistered(
        bytes32 indexed identityId,
        bytes32 indexed applicationId,
        address indexed owner,
        uint8 kind,
        bytes32 key
    );
    /// @notice An identity was Rotated to `successorId`, which is now Active with `newKey`.
    event IdentityKeyRotated(bytes32 indexed identityId, bytes32 indexed successorId, bytes32 newKey);
    /// @notice An identity was Revoked by its owner.
    event IdentityRevokedByOwner(bytes32 indexed identityId, address indexed owner);
    /// @notice An active identity changed owner.
    event IdentityTransferred(bytes32 indexed identityId, address indexed previousOwner, address indexed newOwner);
    /// @notice The key's Ed25519 signature `proof` over "psp-identity-<kind>-v1" || `digest`
    /// (registration, rotation or reclaim), for anyone to verify.
    event KeyConsent(bytes32 indexed identityId, ConsentKind kind, bytes32 digest, bytes proof);
    /// @notice The key's holder took the identity back from `previousOwner`; it is Active again.
    event IdentityReclaimed(bytes32 indexed identityId, address indexed previousOwner, address indexed newOwner);
    /// @notice An application's transfer dropped the registrar approvals of the previous owner.
    event RegistrarsCleared(bytes32 indexed applicationId, uint32 generation);

    /// @notice A required address was zero.
    error ZeroAddress();
    /// @notice An Ed25519 key proof is 64 bytes.
    error InvalidKeyProofLength(uint256 length);
    /// @notice Names are 1-32 bytes of [a-z0-9-]; `offendingIndex` is the first bad byte (or the length when that is wrong).
    error InvalidName(string name, uint256 offendingIndex);
    /// @notice The namespace is already owned.
    error NamespaceTaken(string namespace);
    /// @notice The namespace was never registered.
    error NamespaceNotFound(string namespace);
    /// @notice Caller does not own the namespace.
    error NotNamespaceOwner(string namespace, address caller);
    /// @notice The application already exists in this namespace.
    error ApplicationExists(bytes32 applicationId);
    /// @notice The application was never registered.
    error ApplicationNotFound(bytes32 applicationId);
    /// @notice Caller does not own the application.
    error NotApplicationOwner(bytes32 applicationId, address caller);
    /// @notice The application is Restricted and neither caller nor owner is an approved registrar.
    error PolicyForbids(bytes32 applicationId, address caller, address owner);
    /// @notice Identity kind must be 0 (account), 1 (node) or 2 (group).
    error InvalidKind(uint8 kind);
    /// @notice The all-zero key is not a usable Ed25519 public key.
    error InvalidKey();
    /// @notice The identity id is already registered (Active or Rotated).
    error IdentityExists(bytes32 identityId);
    /// @notice The identity id was revoked and can never be registered again.
    error IdentityRevoked(bytes32 identityId);
    /// @notice The identity id was never registered.
    error IdentityNotFound(bytes32 identityId);
    /// @notice The operation needs an Active identity.
    error IdentityNotActive(bytes32 identityId, IdentityStatus status);
    /// @notice Caller does not own the identity.
    error NotIdentityOwner(bytes32 identityId, address caller);

    /// @param nodeRegistry_ staking registry consulted for the current authority set and quorum
    constructor(INodeRegistry nodeRegistry_) EIP712("PSP IdentityRegistry", "1") {
        if (address(nodeRegistry_) == address(0)) revert ZeroAddress();
        nodeRegistry = nodeRegistry_;
    }

    // ---------------------------------------------------------------- namespaces

    /// @notice Claims a namespace for the caller, first come first served.
    /// @param namespace 1-32 bytes of [a-z0-9-]
    function registerNamespace(string calldata namespace) external {
        _validateName(namespace);
        bytes32 nsHash = keccak256(bytes(namespace));
        if (namespaceOwner[nsHash] != address(0)) revert NamespaceTaken(namespace);
        namespaceOwner[nsHash] = msg.sender;
        emit NamespaceRegistered(nsHash, namespace, msg.sender);
    }

    /// @notice Hands a namespace to `newOwner`. Existing applications keep their own owners.
    /// @param namespace the namespace the caller owns
    /// @param newOwner the new owner, not zero
    function transferNamespace(string calldata namespace, address newOwner) external {
        if (newOwner == address(0)) revert ZeroAddress();
        bytes32 nsHash = _requireNamespaceOwner(namespace);
        namespaceOwner[nsHash] = newOwner;
        emit NamespaceTransferred(nsHash, msg.sender, newOwner);
    }

    // -------------------------------------------------------------- applications

    /// @notice Creates `application` under a namespace the caller owns; the caller becomes its owner.
    /// @param namespace the caller's namespace
    /// @param application 1-32 bytes of [a-z0-9-]
    /// @param policy who may register identities under it
    /// @return appId keccak256(abi.encode(keccak256(namespace), keccak256(application)))
    function registerApplication(
        string calldata namespace,
        string calldata application,
        RegistrationPolicy policy
    ) external returns (bytes32 appId) {
        bytes32 nsHash = _requireNamespaceOwner(namespace);
        _validateName(application);
        bytes32 nameHash = keccak256(bytes(application));
        appId = keccak256(abi.encode(nsHash, nameHash));
        if (_applications[appId].owner != address(0)) revert ApplicationExists(appId);
        _applications[appId] = Application({
            owner: msg.sender,
            policy: policy,
            registrarGeneration: 0,
            namespaceHash: nsHash,
            nameHash: nameHash,
            namespace: namespace,
            name: application
        });
        emit ApplicationRegistered(appId, nsHash, namespace, application, msg.sender, policy);
    }

    /// @notice Changes the registration policy of an application the caller owns.
    /// @param appId the application
    /// @param policy the new policy
    function setApplicationPolicy(bytes32 appId, RegistrationPolicy policy) external {
        _requireApplicationOwner(appId);
        _applications[appId].policy = policy;
        emit ApplicationPolicyChanged(appId, policy);
    }

    /// @notice Hands an application the caller owns to `newOwner`. Every registrar approval
    /// of the previous owner is dropped: the new owner approves its own.
    /// @param appId the application
    /// @param newOwner the new owner, not zero
    function transferApplication(bytes32 appId, address newOwner) external {
        if (newOwner == address(0)) revert ZeroAddress();
        _requireApplicationOwner(appId);
        Application storage app = _applications[appId];
        app.owner = newOwner;
        uint32 generation = ++app.registrarGeneration;
        emit ApplicationTransferred(appId, msg.sender, newOwner);
        emit RegistrarsCleared(appId, generation);
    }

    /// @notice Approves or removes `account` as a registrar of an application the caller owns.
    /// @param appId the application
    /// @param account the registrar
    /// @param approved true to approve, false to remove
    function setRegistrar(bytes32 appId, address account, bool approved) external {
        if (account == address(0)) revert ZeroAddress();
        _requireApplicationOwner(appId);
        _registrars[appId][_applications[appId].registrarGeneration][account] = approved;
        emit RegistrarSet(appId, account, approved);
    }

    // ---------------------------------------------------------------- identities

    /// @notice Registers an Active identity for `r.owner`, proven by authority attestations.
    /// @param r what the attestations state
    /// @param keyProof the key's Ed25519 signature over "psp-identity-registration-v1" ||
    /// `attestationDigest(r)` (published in `KeyConsent`)
    /// @param attestations 65-byte EIP-712 signatures over `attestationDigest(r)` by a quorum of
    /// distinct current authority signers, sorted by strictly ascending signer address
    /// @return identityId the new identity's id
    function registerIdentity(
        Registration calldata r,
        bytes calldata keyProof,
        bytes[] calldata attestations
    ) external returns (bytes32 identityId) {
        bytes32 appId;
        bytes32 digest;
        (identityId, appId, digest) = _admit(r);
        _checkKeyProof(keyProof);
        _verifyAttestations(digest, r.deadline, attestations);

        _identities[identityId] = Identity({
            owner: r.owner,
            status: IdentityStatus.Active,
            kind: r.kind,
            registeredAt: uint64(block.timestamp),
            reclaims: 0,
            applicationId: appId,
            key: r.key,
            successor: bytes32(0)
        });
        emit IdentityRegistered(identityId, appId, r.owner, r.kind, r.key);
        emit KeyConsent(identityId, ConsentKind.Registration, digest, keyProof);
    }

    /// @notice Replaces the key of an Active identity the caller owns. The old identity
    /// becomes Rotated (pointing at the successor); the successor, same application and
    /// kind with `newKey`, becomes Active. The registration policy is not re-checked:
    /// the identity was already admitted.
    /// @param identityId the caller's Active identity
    /// @param newKey the new Ed25519 key
    /// @param deadline deadline inside the rotation attestations
    /// @param keyProof the new key's Ed25519 signature over "psp-identity-rotation-v1" ||
    /// `rotationDigest(msg.sender, identityId, newKey, deadline)` (published in `KeyConsent`)
    /// @param attestations 65-byte EIP-712 `KeyRotationAttestation` signatures over
    /// `rotationDigest(msg.sender, identityId, newKey, deadline)` by distinct current
    /// authority signers, sorted by strictly ascending signer address
    /// @return successorId the new identity's id
    function rotateKey(
        bytes32 identityId,
        bytes32 newKey,
        uint64 deadline,
        bytes calldata keyProof,
        bytes[] calldata attestations
    ) external returns (bytes32 successorId) {
        Identity storage old = _requireActiveOwned(identityId);
        if (newKey == bytes32(0)) revert InvalidKey();
        Application storage app = _applications[old.applicationId];
        uint8 kind = old.kind;
        successorId = keccak256(abi.encode(app.namespaceHash, app.nameHash, kind, newKey));
        _requireUnused(successorId);
        _checkKeyProof(keyProof);
        bytes32 digest = _rotationDigest(msg.sender, identityId, newKey, deadline);
        _verifyAttestations(digest, deadline, attestations);

        old.status = IdentityStatus.Rotated;
        old.successor = successorId;
        _identities[successorId] = Identity({
            owner: msg.sender,
            status: IdentityStatus.Active,
            kind: kind,
            registeredAt: uint64(block.timestamp),
            reclaims: 0,
            applicationId: old.applicationId,
            key: newKey,
            successor: bytes32(0)
        });
        emit IdentityKeyRotated(identityId, successorId, newKey);
        emit IdentityRegistered(successorId, old.applicationId, msg.sender, kind, newKey);
        emit KeyConsent(successorId, ConsentKind.Rotation, digest, keyProof);
    }

    /// @notice Hands an identity registered (or rotated to) without its key's consent to the
    /// key's holder, at `newOwner`: Active again whatever its status, successor cleared.
    /// An identity whose published consent verifies can never be reclaimed, so a revoked
    /// key stays revoked against anyone who later steals it.
    /// @param identityId the contested identity (any status but None)
    /// @param newOwner the owner the key's holder chose, not zero
    /// @param deadline deadline inside the reclaim attestations
    /// @param keyProof the key's Ed25519 signature over "psp-identity-reclaim-v1" ||
    /// `reclaimDigest(identityId, reclaims, newOwner, deadline)` (published in `KeyConsent`)
    /// @param attestations EIP-712 `IdentityReclaim` signatures by a quorum of current
    /// authorities, ascending by signer; each checked off chain that the identity's latest
    /// `KeyConsent` proof does not verify and that `keyProof` does
    function reclaimIdentity(
        bytes32 identityId,
        address newOwner,
        uint64 deadline,
        bytes calldata keyProof,
        bytes[] calldata attestations
    ) external {
        if (newOwner == address(0)) revert ZeroAddress();
        Identity storage id = _identities[identityId];
        if (id.status == IdentityStatus.None) revert IdentityNotFound(identityId);
        _checkKeyProof(keyProof);
        bytes32 digest = _reclaimDigest(identityId, id.reclaims, newOwner, deadline);
        _verifyAttestations(digest, deadline, attestations);

        address previousOwner = id.owner;
        id.owner = newOwner;
        id.status = IdentityStatus.Active;
        id.successor = bytes32(0);
        id.registeredAt = uint64(block.timestamp);
        ++id.reclaims;
        emit IdentityReclaimed(identityId, previousOwner, newOwner);
        emit KeyConsent(identityId, ConsentKind.Reclaim, digest, keyProof);
    }

    /// @notice Permanently revokes an Active identity the caller owns (e.g. key compromised).
    /// @param identityId the caller's Active identity
    function revokeIdentity(bytes32 identityId) external {
        Identity storage id = _requireActiveOwned(identityId);
        id.status = IdentityStatus.Revoked;
        emit IdentityRevokedByOwner(identityId, msg.sender);
    }

    /// @notice Hands an Active identity the caller owns to `newOwner`.
    /// @param identityId the caller's Active identity
    /// @param newOwner the new owner, not zero
    function transferIdentity(bytes32 identityId, address newOwner) external {
        if (newOwner == address(0)) revert ZeroAddress();
        Identity storage id = _requireActiveOwned(identityId);
        id.owner = newOwner;
        emit IdentityTransferred(identityId, msg.sender, newOwner);
    }

    // --------------------------------------------------------------------- views

    /// @notice Distinct current authority attestations a registration, rotation or reclaim
    /// needs now: the NodeRegistry's authority quorum.
    /// @return the threshold
    function attestationThreshold() external view returns (uint256) {
        return nodeRegistry.authorityQuorum();
    }

    /// @notice The full record of an identity (status None when never registered).
    /// @param identityId the identity
    /// @return the stored record
    function getIdentity(bytes32 identityId) external view returns (Identity memory) {
        return _identities[identityId];
    }

    /// @notice True when the identity is registered and neither Rotated nor Revoked.
    /// @param identityId the identity
    /// @return whether it is Active
    function isActive(bytes32 identityId) external view returns (bool) {
        return _identities[identityId].status == IdentityStatus.Active;
    }

    /// @notice The application an identity belongs to (zero when never registered).
    /// @param identityId the identity
    /// @return the application id
    function applicationOf(bytes32 identityId) external view returns (bytes32) {
        return _identities[identityId].applicationId;
    }

    /// @notice The owner of an identity (zero when never registered).
    /// @param identityId the identity
    /// @return the owner
    function ownerOf(bytes32 identityId) external view returns (address) {
        return _identities[identityId].owner;
    }

    /// @notice The full record of an application (owner zero when never registered).
    /// @param appId the application
    /// @return the stored record
    function getApplication(bytes32 appId) external view returns (Application memory) {
        return _applications[appId];
    }

    /// @notice The owner of an application (zero when never registered).
    /// @param appId the application
    /// @return the owner
    function applicationOwner(bytes32 appId) external view returns (address) {
        return _applications[appId].owner;
    }

    /// @notice True when `account` may register under a Restricted application (owners always may).
    /// @param appId the application
    /// @param account the account asked about
    /// @return whether it is a registrar
    function isRegistrar(bytes32 appId, address account) external view returns (bool) {
        Application storage app = _applications[appId];
        return _isRegistrar(appId, app, account);
    }

    /// @notice The EIP-712 digest each authority signs for `r`, bound to this chain and registry.
    /// @param r the registration
    /// @return the digest
    function attestationDigest(Registration calldata r) external view returns (bytes32) {
        return _digest(r.owner, keccak256(bytes(r.namespace)), keccak256(bytes(r.application)), r.kind, r.key, r.deadline);
    }

    /// @notice The EIP-712 `KeyRotationAttestation` digest each authority signs for a rotation,
    /// bound to this chain and registry.
    /// @param owner the identity's owner (the account that will call rotateKey)
    /// @param identityId the Active identity being rotated
    /// @param newKey the new Ed25519 key
    /// @param deadline last valid second of the attestations
    /// @return the digest
    function rotationDigest(
        address owner,
        bytes32 identityId,
        bytes32 newKey,
        uint64 deadline
    ) external view returns (bytes32) {
        return _rotationDigest(owner, identityId, newKey, deadline);
    }

    /// @notice The EIP-712 `IdentityReclaim` digest each authority signs for a reclaim.
    /// @param identityId the contested identity
    /// @param contestedReclaims its current `reclaims` count
    /// @param newOwner the owner the key's holder chose
    /// @param deadline last valid second of the attestations
    /// @return the digest
    function reclaimDigest(
        bytes32 identityId,
        uint16 contestedReclaims,
        address newOwner,
        uint64 deadline
    ) external view returns (bytes32) {
        return _reclaimDigest(identityId, contestedReclaims, newOwner, deadline);
    }

    /// @notice keccak256(abi.encode(keccak256(bytes(namespace)), keccak256(bytes(application)))).
    /// @param namespace the namespace name
    /// @param application the application name
    /// @return the application id
    function applicationIdOf(string calldata namespace, string calldata application) external pure returns (bytes32) {
        return keccak256(abi.encode(keccak256(bytes(namespace)), keccak256(bytes(application))));
    }

    /// @notice keccak256(abi.encode(keccak256(bytes(namespace)), keccak256(bytes(application)), kind, key)).
    /// @param namespace the namespace name
    /// @param application the application name
    /// @param kind 0 account, 1 node, 2 group
    /// @param key the Ed25519 public key
    /// @return the identity id
    function identityIdOf(
        string calldata namespace,
        string calldata application,
        uint8 kind,
        bytes32 key
    ) external pure returns (bytes32) {
        return keccak256(abi.encode(keccak256(bytes(namespace)), keccak256(bytes(application)), kind, key));
    }

    // ------------------------------------------------------------------ internal

    function _digest(
        address owner,
        bytes32 nsHash,
        bytes32 nameHash,
        uint8 kind,
        bytes32 key,
        uint64 deadline
    ) private view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(ATTESTATION_TYPEHASH, owner, nsHash, nameHash, kind, key, deadline)));
    }

    function _rotationDigest(
        address owner,
        bytes32 identityId,
        bytes32 newKey,
        uint64 deadline
    ) private view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(ROTATION_TYPEHASH, owner, identityId, newKey, deadline)));
    }

    /// @dev registerIdentity's checks before the attestations: fields, application and
    /// policy, an unused id. Returns the identity id, its application and the digest.
    function _admit(Registration calldata r) private view returns (bytes32 identityId, bytes32 appId, bytes32 digest) {
        if (r.owner == address(0)) revert ZeroAddress();
        if (r.kind > MAX_KIND) revert InvalidKind(r.kind);
        if (r.key == bytes32(0)) revert InvalidKey();
        bytes32 nsHash = keccak256(bytes(r.namespace));
        bytes32 nameHash = keccak256(bytes(r.application));
        appId = keccak256(abi.encode(nsHash, nameHash));
        Application storage app = _applications[appId];
        if (app.owner == address(0)) revert ApplicationNotFound(appId);
        if (
            app.policy == RegistrationPolicy.Restricted &&
            !_isRegistrar(appId, app, msg.sender) &&
            !_isRegistrar(appId, app, r.owner)
        ) revert PolicyForbids(appId, msg.sender, r.owner);
        identityId = keccak256(abi.encode(nsHash, nameHash, r.kind, r.key));
        _requireUnused(identityId);
        digest = _digest(r.owner, nsHash, nameHash, r.kind, r.key, r.deadline);
    }

    function _reclaimDigest(
        bytes32 identityId,
        uint16 contestedReclaims,
        address newOwner,
        uint64 deadline
    ) private view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(RECLAIM_TYPEHASH, identityId, contestedReclaims, newOwner, deadline)));
    }

    /// @dev One call: the NodeRegistry checks the quorum, order and membership (O(1) each)
    /// and reverts with the IAuthorityAttestations errors this contract shares.
    function _verifyAttestations(bytes32 digest, uint64 deadline, bytes[] calldata attestations) private view {
        if (block.timestamp > deadline) revert AttestationExpired(deadline, block.timestamp);
        nodeRegistry.checkAuthorityAttestations(digest, attestations);
    }

    function _checkKeyProof(bytes calldata keyProof) private pure {
        if (keyProof.length != KEY_PROOF_LENGTH) revert InvalidKeyProofLength(keyProof.length);
    }

    function _requireUnused(bytes32 identityId) private view {
        IdentityStatus status = _identities[identityId].status;
        if (status == IdentityStatus.Revoked) revert IdentityRevoked(identityId);
        if (status != IdentityStatus.None) revert IdentityExists(identityId);
    }

    function _requireActiveOwned(bytes32 identityId) private view returns (Identity storage id) {
        id = _identities[identityId];
        if (id.status == IdentityStatus.None) revert IdentityNotFound(identityId);
        if (id.owner != msg.sender) revert NotIdentityOwner(identityId, msg.sender);
        if (id.status != IdentityStatus.Active) revert IdentityNotActive(identityId, id.status);
    }

    function _requireNamespaceOwner(string calldata namespace) private view returns (bytes32 nsHash) {
        nsHash = keccak256(bytes(namespace));
        address owner = namespaceOwner[nsHash];
        if (owner == address(0)) revert NamespaceNotFound(namespace);
        if (owner != msg.sender) revert NotNamespaceOwner(namespace, msg.sender);
    }

    function _requireApplicationOwner(bytes32 appId) private view {
        address owner = _applications[appId].owner;
        if (owner == address(0)) revert ApplicationNotFound(appId);
        if (owner != msg.sender) revert NotApplicationOwner(appId, msg.sender);
    }

    function _isRegistrar(bytes32 appId, Application storage app, address account) private view returns (bool) {
        return account != address(0) && (account == app.owner || _registrars[appId][app.registrarGeneration][account]);
    }

    /// @dev 1-32 bytes, each in [a-z0-9-]; no dots since the identity string uses them as separators.
    function _validateName(string calldata name) private pure {
        bytes calldata b = bytes(name);
        if (b.length == 0 || b.length > MAX_NAME_LENGTH) revert InvalidName(name, b.length);
        for (uint256 i = 0; i < b.length; ++i) {
            bytes1 c = b[i];
            bool ok = (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c == 0x2d;
            if (!ok) revert InvalidName(name, i);
        }
    }
}
