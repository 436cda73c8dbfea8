// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {EnumerableSet} from "@openzeppelin/contracts/utils/structs/EnumerableSet.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";
import {INodeRegistry} from "./interfaces/INodeRegistry.sol";
import {NodeRoleSets} from "./NodeRoleSets.sol";

/// @title NodeRegistry
/// @notice Registry and staking for PSP nodes. Owns: node records keyed by the
/// node's Ed25519 identity key, their operator and EVM signer, role bits, bonded
/// and unbonding PSP stake, slashing, the discovery / authority / oracle sets
/// (NodeRoleSets) and the authority quorum other contracts check attestations
/// against. Trusts: the PSP token (a plain OpenZeppelin ERC20 without hooks) and
/// holders of GOVERNANCE_ROLE / SLASHER_ROLE (a TimelockController on deployments).
/// @dev Consent: a signer is bound to a node only with its EIP-712 `NodeConsent`
/// signature (nonce per signer, so a consent is used once). The node key is an
/// Ed25519 key the EVM cannot check cheaply: registration carries its Ed25519
/// signature over the same digest (event `NodeKeyProof`) for anyone to check off
/// chain, and the key's holder takes back a node registered without it through
/// `reclaimNode`, attested by a quorum of current authorities that checked both.
/// Invariant: token.balanceOf(this) == totalBonded + totalUnbonding, where
/// totalUnbonding includes stake released by reclaims.
contract NodeRegistry is INodeRegistry, NodeRoleSets, AccessControl, ReentrancyGuardTransient, EIP712, Nonces {
    using SafeERC20 for IERC20;
    using EnumerableSet for EnumerableSet.Bytes32Set;

    /// @notice Sets parameters, approves set roles, sets the slash recipient, may slash.
    bytes32 public constant GOVERNANCE_ROLE = keccak256("GOVERNANCE_ROLE");
    /// @notice May slash stake with evidence.
    bytes32 public constant SLASHER_ROLE = keccak256("SLASHER_ROLE");

    /// @notice EIP-712 type the signer signs to be bound to a node (and the node key signs, Ed25519).
    bytes32 public constant CONSENT_TYPEHASH =
        keccak256("NodeConsent(bytes32 nodeKey,address operator,address signer,uint256 nonce,uint64 deadline)");
    /// @notice EIP-712 type authorities sign to hand a node key to its holder.
    bytes32 public constant RECLAIM_TYPEHASH =
        keccak256("NodeReclaim(bytes32 nodeKey,uint32 contestedSeq,bytes32 consentDigest)");
    /// @notice Length of an Ed25519 signature.
    uint256 public constant KEY_PROOF_LENGTH = 64;

    /// @notice A node record as returned by `getNode` / `nodesPage`.
    struct NodeInfo {
        bytes32 nodeKey;
        address operator;
        address signer;
        uint8 roles;
        uint8 approvedRoles;
        uint8 memberRoles;
        uint32 seq;
        uint64 registeredAt;
        uint256 bonded;
        uint256 unbonding;
        uint64 unbondingReleaseAt;
        uint64 discoverySince;
        uint64 authoritySince;
        uint64 oracleSince;
    }

    /// @notice Stake a reclaim took from a node's former operator, withdrawable after `releaseAt`.
    struct Released {
        uint128 amount;
        uint64 releaseAt;
    }

    /// @notice The staking token (PSP).
    IERC20 public immutable token;
    /// @inheritdoc INodeRegistry
    uint64 public immutable minUnbondingDelay;

    /// @notice Where slashed stake is sent (deployments point it at BandwidthRewards).
    address public slashRecipient;
    /// @notice Sum of bonded stake over all nodes.
    uint256 public totalBonded;
    /// @notice Sum of unbonding stake over all nodes, plus stake released by reclaims.
    uint256 public totalUnbonding;
    /// @notice Registrations so far; a node's `seq` is its place in that order (ties rank by it).
    uint32 public registrationCount;

    EnumerableSet.Bytes32Set private _allNodes;
    mapping(address operator => Released) private _released;

    /// @notice A node was registered by `operator`; `seq` is its registration order.
    event NodeRegistered(bytes32 indexed nodeKey, address indexed operator, address indexed signer, uint8 roles, uint32 seq);
    /// @notice The Ed25519 signature by `nodeKey` over `digest` ("psp-node-consent-v1" ||
    /// digest, or "psp-node-reclaim-v1" || digest for `reclaim`), for anyone to verify.
    event NodeKeyProof(bytes32 indexed nodeKey, bool reclaim, bytes32 digest, bytes proof);
    /// @notice A node's role bits changed.
    event RolesChanged(bytes32 indexed nodeKey, uint8 oldRoles, uint8 newRoles);
    /// @notice A node's EVM signer changed (with the new signer's consent).
    event SignerChanged(bytes32 indexed nodeKey, address indexed oldSigner, address indexed newSigner);
    /// @notice A node without stake was removed.
    event NodeDeregistered(bytes32 indexed nodeKey, address indexed operator);
    /// @notice Stake was bonded to a node.
    event Staked(bytes32 indexed nodeKey, address indexed from, uint256 amount, uint256 bondedAfter);
    /// @notice Bonded stake moved into the node's unbonding entry.
    event UnstakeRequested(bytes32 indexed nodeKey, uint256 amount, uint256 unbondingAfter, uint64 releaseAt);
    /// @notice Matured unbonding stake was paid to the operator.
    event Withdrawn(bytes32 indexed nodeKey, address indexed to, uint256 amount);
    /// @notice Stake was slashed and sent to `recipient`.
    event Slashed(
        bytes32 indexed nodeKey,
        bytes32 indexed evidenceHash,
        address indexed recipient,
        uint256 fromBonded,
        uint256 fromUnbonding
    );
    /// @notice The key's holder took the node back from `previousOperator`, whose stake
    /// (`released`) is withdrawable through `withdrawReleased` from `releaseAt`.
    event NodeReclaimed(
        bytes32 indexed nodeKey,
        address indexed previousOperator,
        address indexed newOperator,
        uint256 released,
        uint64 releaseAt
    );
    /// @notice Stake released by a reclaim was paid to `operator`.
    event ReleasedWithdrawn(address indexed operator, uint256 amount);
    /// @notice Stake released by a reclaim was slashed.
    event ReleasedSlashed(address indexed operator, bytes32 indexed evidenceHash, address indexed recipient, uint256 amount);
    /// @notice Governance approved or revoked a node for a set role.
    event RoleApprovalChanged(bytes32 indexed nodeKey, uint8 indexed role, bool approved);
    /// @notice Governance changed the parameters.
    event ParamsChanged(Params params);
    /// @notice Governance changed the slash recipient.
    event SlashRecipientChanged(address indexed oldRecipient, address indexed newRecipient);

    /// @notice Node keys are Ed25519 public keys; the all-zero key is reserved as "none".
    error ZeroNodeKey();
    /// @notice A node with this key is already registered.
    error NodeAlreadyRegistered(bytes32 nodeKey);
    /// @notice No node is registered under this key.
    error UnknownNode(bytes32 nodeKey);
    /// @notice Only the node's operator may do this.
    error NotOperator(bytes32 nodeKey, address caller);
    /// @notice The signer address must not be zero.
    error ZeroSigner();
    /// @notice The signer address already belongs to another node.
    error SignerInUse(address signer, bytes32 nodeKey);
    /// @notice The consent signature does not recover to `signer` for this node, operator, nonce and deadline.
    error InvalidSignerConsent(address signer);
    /// @notice The consent's deadline has passed.
    error ConsentExpired(uint64 deadline, uint256 nowTimestamp);
    /// @notice An Ed25519 key proof is 64 bytes.
    error InvalidKeyProofLength(uint256 length);
    /// @notice Roles must be a non-zero combination of the defined role bits.
    error InvalidRoles(uint8 roles);
    /// @notice Amounts must be non-zero.
    error ZeroAmount();
    /// @notice The node has less bonded stake than requested.
    error InsufficientBondedStake(uint256 requested, uint256 bonded);
    /// @notice The unbonding entry is not releasable before `releaseAt`.
    error UnbondingNotMatured(uint64 releaseAt);
    /// @notice There is no unbonding stake to withdraw.
    error NothingToWithdraw(bytes32 nodeKey);
    /// @notice There is no stake left to slash.
    error NothingToSlash(bytes32 nodeKey);
    /// @notice Deregistration needs bonded and unbonding stake both at zero.
    error StakeRemaining(uint256 bonded, uint256 unbonding);
    /// @notice Caller holds neither SLASHER_ROLE nor GOVERNANCE_ROLE.
    error NotSlasher(address caller);
    /// @notice The slash recipient must not be zero.
    error ZeroSlashRecipient();
    /// @notice Discovery, authority and oracle minimum stakes must be non-zero.
    error ZeroMinimumStake(uint8 role);
    /// @notice maxAuthorities and maxOracles must be in 1..MAX_SET_CAP.
    error InvalidSetCap(uint16 cap);
    /// @notice The unbonding delay must cover the dispute window (minUnbondingDelay).
    error UnbondingDelayTooShort(uint64 unbondingDelay, uint64 minimum);
    /// @notice attestationFloor must be in 1..maxAuthorities and attestationBps at most 10000.
    error InvalidAttestationThreshold(uint16 floor, uint16 bps, uint16 maxAuthorities);
    /// @notice approvalRoles may only name set roles.
    error InvalidApprovalRoles(uint8 approvalRoles);

    // ---------------------------------------------------------------- construction

    /// @param token_ The PSP token staked here.
    /// @param admin Receives DEFAULT_ADMIN_ROLE and GOVERNANCE_ROLE, and is the first slash recipient.
    /// @param initialParams Initial parameters (see `setParams` for the rules).
    /// @param minUnbondingDelay_ Floor of `unbondingDelay` for the registry's life: at least the
    /// longest dispute window resting on this stake (plus the governance delay to slash).
    constructor(IERC20 token_, address admin, Params memory initialParams, uint64 minUnbondingDelay_)
        EIP712("PSP NodeRegistry", "1")
    {
        token = token_;
        minUnbondingDelay = minUnbondingDelay_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(GOVERNANCE_ROLE, admin);
        _setParams(initialParams);
        _setSlashRecipient(admin);
    }

    // ---------------------------------------------------------------- operator functions

    /// @notice Registers a node; the caller becomes its operator.
    /// @param nodeKey The node's Ed25519 identity public key.
    /// @param signer EVM address the node signs attestations and oracle transactions with.
    /// @param roles Non-zero combination of ROLE_* bits.
    /// @param deadline Last second the consents are valid.
    /// @param signerConsent `signer`'s 65-byte EIP-712 signature over `consentDigest(nodeKey, caller, signer, nonces(signer), deadline)`.
    /// @param keyProof Ed25519 signature by `nodeKey` over "psp-node-consent-v1" || that digest
    /// (published in `NodeKeyProof`, checked off chain; a node registered without it can be reclaimed).
    function registerNode(
        bytes32 nodeKey,
        address signer,
        uint8 roles,
        uint64 deadline,
        bytes calldata signerConsent,
        bytes calldata keyProof
    ) external {
        if (nodeKey == bytes32(0)) revert ZeroNodeKey();
        if (_nodes[nodeKey].operator != address(0)) revert NodeAlreadyRegistered(nodeKey);
        _checkRoles(roles);
        bytes32 digest = _useConsent(nodeKey, signer, deadline, signerConsent);
        _checkKeyProof(keyProof);
        _allNodes.add(nodeKey);
        _register(nodeKey, signer, roles);
        emit NodeKeyProof(nodeKey, false, digest, keyProof);
    }

    /// @notice Replaces a node's role bits. Operator only.
    function setRoles(bytes32 nodeKey, uint8 roles) external {
        Node storage node = _operatorNode(nodeKey);
        _checkRoles(roles);
        uint8 oldRoles = node.roles;
        node.roles = roles;
        emit RolesChanged(nodeKey, oldRoles, roles);
        _syncRoles(nodeKey, node);
    }

    /// @notice Replaces a node's EVM signer, with the new signer's consent. Operator only.
    /// Votes count per node, so the node keeps one voice in any open vote.
    function setSigner(bytes32 nodeKey, address newSigner, uint64 deadline, bytes calldata signerConsent) external {
        Node storage node = _operatorNode(nodeKey);
        _useConsent(nodeKey, newSigner, deadline, signerConsent);
        address oldSigner = node.signer;
        delete _nodeKeyOfSigner[oldSigner];
        _nodeKeyOfSigner[newSigner] = nodeKey;
        node.signer = newSigner;
        emit SignerChanged(nodeKey, oldSigner, newSigner);
    }

    /// @notice Removes a node that has no bonded or unbonding stake left. Operator only.
    function deregisterNode(bytes32 nodeKey) external {
        Node storage node = _operatorNode(nodeKey);
        if (node.bonded != 0 || node.unbonding != 0) revert StakeRemaining(node.bonded, node.unbonding);
        address operator = node.operator;
        // Membership needs a non-zero minimum stake, so a node without stake is in no set.
        delete _nodeKeyOfSigner[node.signer];
        _allNodes.remove(nodeKey);
        delete _nodes[nodeKey];
        emit NodeDeregistered(nodeKey, operator);
    }

    /// @notice Bonds `amount` PSP from the operator to the node (needs an allowance). Operator only.
    function stake(bytes32 nodeKey, uint256 amount) external nonReentrant {
        _stake(nodeKey, amount);
    }

    /// @notice `stake` with an ERC-2612 permit instead of a prior approval. Operator only.
    /// @dev A permit front-run by someone else still leaves the allowance in place,
    /// so a failing permit is ignored and the transfer decides (OZ's recommendation).
    function stakeWithPermit(bytes32 nodeKey, uint256 amount, uint256 deadline, uint8 v, bytes32 r, bytes32 s)
        external
        nonReentrant
    {
        try IERC20Permit(address(token)).permit(msg.sender, address(this), amount, deadline, v, r, s) {} catch {}
        _stake(nodeKey, amount);
    }

    /// @notice Moves `amount` of bonded stake into the node's unbonding entry, releasable
    /// `unbondingDelay` seconds from now. A pending entry is merged and its clock restarts.
    /// Operator only.
    function requestUnstake(bytes32 nodeKey, uint256 amount) external {
        Node storage node = _operatorNode(nodeKey);
        if (amount == 0) revert ZeroAmount();
        if (amount > node.bonded) revert InsufficientBondedStake(amount, node.bonded);
        uint128 amount128 = uint128(amount);
        uint64 releaseAt = uint64(block.timestamp) + _params.unbondingDelay;
        node.bonded -= amount128;
        node.unbonding += amount128;
        node.unbondingReleaseAt = releaseAt;
        totalBonded -= amount;
        totalUnbonding += amount;
        emit UnstakeRequested(nodeKey, amount, node.unbonding, releaseAt);
        _syncRoles(nodeKey, node);
    }

    /// @notice Pays the node's matured unbonding stake to its operator. Operator only.
    function withdraw(bytes32 nodeKey) external nonReentrant {
        Node storage node = _operatorNode(nodeKey);
        uint256 amount = node.unbonding;
        if (amount == 0) revert NothingToWithdraw(nodeKey);
        if (block.timestamp < node.unbondingReleaseAt) revert UnbondingNotMatured(node.unbondingReleaseAt);
        node.unbonding = 0;
        node.unbondingReleaseAt = 0;
        totalUnbonding -= amount;
        emit Withdrawn(nodeKey, msg.sender, amount);
        token.safeTransfer(msg.sender, amount);
    }

    /// @notice Joins `role`'s set once the node qualifies and its activation delay has
    /// passed: into a free seat, or in place of the lowest member it outranks. Anyone may call.
    function activate(bytes32 nodeKey, uint8 role) external {
        _checkSetRole(role);
        _syncRole(nodeKey, _existingNode(nodeKey), role, true);
    }

    /// @notice Re-evaluates `nodeKeys` against the current parameters and joins the
    /// sets they may join (useful after governance lowers a minimum). Anyone may call.
    function refreshCandidacy(bytes32[] calldata nodeKeys) external {
        for (uint256 i = 0; i < nodeKeys.length; ++i) {
            _syncRoles(nodeKeys[i], _existingNode(nodeKeys[i]));
        }
    }

    // ---------------------------------------------------------------- reclaim

    /// @notice Hands a node key registered without its holder's consent to the holder: the
    /// caller becomes its operator with `signer` and `roles`, as a new registration (last in
    /// order, unapproved). The former operator's stake is released to it after the unbonding
    /// delay (`withdrawReleased`), slashable meanwhile (`slashReleased`).
    /// @param attestations EIP-712 `NodeReclaim(nodeKey, contestedSeq, consentDigest)` signatures
    /// by a quorum of current authorities, ascending by signer. Each checked off chain that the
    /// contested registration's `NodeKeyProof` does not verify and that `keyProof` does.
    /// @param keyProof Ed25519 signature by `nodeKey` over "psp-node-reclaim-v1" || consentDigest.
    function reclaimNode(
        bytes32 nodeKey,
        address signer,
        uint8 roles,
        uint64 deadline,
        bytes calldata signerConsent,
        bytes calldata keyProof,
        bytes[] calldata attestations
    ) external nonReentrant {
        Node storage node = _existingNode(nodeKey);
        _checkRoles(roles);
        _checkKeyProof(keyProof);
        bytes32 digest = _useConsent(nodeKey, signer, deadline, signerConsent);
        _checkAttestations(reclaimDigest(nodeKey, node.seq, digest), attestations);
        _release(nodeKey, node);
        _register(nodeKey, signer, roles);
        emit NodeKeyProof(nodeKey, true, digest, keyProof);
    }

    /// @notice Pays the caller the stake reclaims released from its nodes, once matured.
    function withdrawReleased() external nonReentrant {
        Released memory held = _released[msg.sender];
        if (held.amount == 0) revert NothingToWithdraw(bytes32(0));
        if (block.timestamp < held.releaseAt) revert UnbondingNotMatured(held.releaseAt);
        delete _released[msg.sender];
        totalUnbonding -= held.amount;
        emit ReleasedWithdrawn(msg.sender, held.amount);
        token.safeTransfer(msg.sender, held.amount);
    }

    // ---------------------------------------------------------------- slashing and governance

    /// @notice Slashes up to `amount` from the node, bonded stake first, then unbonding,
    /// and sends it to `slashRecipient`. SLASHER_ROLE or GOVERNANCE_ROLE.
    /// @param evidenceHash Hash of the off-chain evidence, recorded in the event.
    function slash(bytes32 nodeKey, uint256 amount, bytes32 evidenceHash) external nonReentrant {
        _onlySlasher();
        Node storage node = _existingNode(nodeKey);
        if (amount == 0) revert ZeroAmount();
        uint256 bonded = node.bonded;
        uint256 unbonding = node.unbonding;
        if (bonded + unbonding == 0) revert NothingToSlash(nodeKey);
        uint256 fromBonded = amount < bonded ? amount : bonded;
        uint256 rest = amount - fromBonded;
        uint256 fromUnbonding = rest < unbonding ? rest : unbonding;
        node.bonded = uint128(bonded - fromBonded);
        node.unbonding = uint128(unbonding - fromUnbonding);
        totalBonded -= fromBonded;
        totalUnbonding -= fromUnbonding;
        address recipient = slashRecipient;
        emit Slashed(nodeKey, evidenceHash, recipient, fromBonded, fromUnbonding);
        _syncRoles(nodeKey, node);
        token.safeTransfer(recipient, fromBonded + fromUnbonding);
    }

    /// @notice Slashes up to `amount` of the stake a reclaim released to `operator`. SLASHER_ROLE or GOVERNANCE_ROLE.
    function slashReleased(address operator, uint256 amount, bytes32 evidenceHash) external nonReentrant {
        _onlySlasher();
        if (amount == 0) revert ZeroAmount();
        Released storage held = _released[operator];
        uint256 taken = amount < held.amount ? amount : held.amount;
        if (taken == 0) revert NothingToSlash(bytes32(0));
        held.amount -= uint128(taken);
        totalUnbonding -= taken;
        address recipient = slashRecipient;
        emit ReleasedSlashed(operator, evidenceHash, recipient, taken);
        token.safeTransfer(recipient, taken);
    }

    /// @notice Replaces the parameters and re-checks every set against them. GOVERNANCE_ROLE.
    /// @dev Discovery, authority and oracle minimums must be non-zero, both caps in
    /// 1..MAX_SET_CAP, unbondingDelay >= minUnbondingDelay, 1 <= attestationFloor <=
    /// maxAuthorities, attestationBps <= 10000, approvalRoles within SET_ROLES. Members
    /// that no longer qualify leave at once and sets above a lowered cap lose their
    /// lowest members; after a lowered minimum, nodes that now qualify join at their
    /// next update, through `refreshCandidacy` or `activate`.
    function setParams(Params calldata newParams) external onlyRole(GOVERNANCE_ROLE) {
        _setParams(newParams);
        _sweepSets();
    }

    /// @notice Sets where slashed stake goes. GOVERNANCE_ROLE.
    function setSlashRecipient(address recipient) external onlyRole(GOVERNANCE_ROLE) {
        _setSlashRecipient(recipient);
    }

    /// @notice Approves (or revokes) a node for a set role (discovery, authority, oracle).
    /// Where `approvalRoles` names the role, only approved nodes qualify. GOVERNANCE_ROLE.
    function approveRole(bytes32 nodeKey, uint8 role, bool approved) external onlyRole(GOVERNANCE_ROLE) {
        _checkSetRole(role);
        Node storage node = _existingNode(nodeKey);
        node.approvedRoles = approved ? node.approvedRoles | role : node.approvedRoles & ~role;
        emit RoleApprovalChanged(nodeKey, role, approved);
        _syncRoles(nodeKey, node);
    }

    // ---------------------------------------------------------------- views: nodes

    /// @notice Current parameters. View.
    function params() external view returns (Params memory) {
        return _params;
    }

    /// @notice The node record for `nodeKey`; reverts UnknownNode when absent. View.
    function getNode(bytes32 nodeKey) external view returns (NodeInfo memory) {
        return _info(nodeKey, _existingNode(nodeKey));
    }

    /// @notice True when `nodeKey` is registered (getNode would not revert). View.
    function isRegistered(bytes32 nodeKey) external view returns (bool) {
        return _nodes[nodeKey].operator != address(0);
    }

    /// @notice Node key of the node whose signer is `signer`, or zero. View.
    function nodeKeyOfSigner(address signer) external view returns (bytes32) {
        return _nodeKeyOfSigner[signer];
    }

    /// @notice Number of registered nodes. View.
    function nodeCount() external view returns (uint256) {
        return _allNodes.length();
    }

    /// @notice Up to `limit` node records starting at position `offset` (registration
    /// order, except that deregistration moves the last node into the freed slot). View.
    function nodesPage(uint256 offset, uint256 limit) external view returns (NodeInfo[] memory page) {
        uint256 total = _allNodes.length();
        uint256 end = offset >= total ? offset : (limit > total - offset ? total : offset + limit);
        page = new NodeInfo[](end - offset);
        for (uint256 i = offset; i < end; ++i) {
            bytes32 key = _allNodes.at(i);
            page[i - offset] = _info(key, _nodes[key]);
        }
    }

    /// @notice Stake released to `operator` by reclaims, and when it matures. View.
    function released(address operator) external view returns (Released memory) {
        return _released[operator];
    }

    /// @notice True when the node could hold `role` (one ROLE_* bit) now: for onion the bit
    /// and `minStakeOnion`; for a set role it is a member, or qualifies and its activation
    /// delay has passed (set caps not considered). View.
    function isEligible(bytes32 nodeKey, uint8 role) external view returns (bool) {
        Node storage node = _nodes[nodeKey];
        if (role == ROLE_ONION) {
            return node.operator != address(0) && node.roles & ROLE_ONION != 0 && node.bonded >= _params.minStakeOnion;
        }
        _checkSetRole(role);
        if (node.memberRoles & role != 0) return true;
        uint64 since = _since(node, role);
        return since != 0 && _qualifies(role, node) && block.timestamp >= since + _delay(role);
    }

    /// @notice True when the node is in `role`'s set. View.
    function isMember(bytes32 nodeKey, uint8 role) external view returns (bool) {
        _checkSetRole(role);
        return _nodes[nodeKey].memberRoles & role != 0;
    }

    // ---------------------------------------------------------------- views: sets

    /// @notice The discovery set, ordered by bonded stake descending, ties by registration order. View.
    function discoverySet() external view returns (bytes32[] memory nodeKeys, address[] memory signers) {
        return _rankedSet(ROLE_DISCOVERY);
    }

    /// @notice The authority set, ordered as `discoverySet`, at most maxAuthorities. View.
    function authoritySet() external view returns (bytes32[] memory nodeKeys, address[] memory signers) {
        return _rankedSet(ROLE_AUTHORITY);
    }

    /// @notice The oracle set, ordered as `discoverySet`, at most maxOracles. View.
    function oracleSet() external view returns (bytes32[] memory nodeKeys, address[] memory signers) {
        return _rankedSet(ROLE_ORACLE);
    }

    /// @inheritdoc INodeRegistry
    function isAuthoritySigner(address signer) external view returns (bool) {
        return _isMemberSigner(signer, ROLE_AUTHORITY);
    }

    /// @inheritdoc INodeRegistry
    function isOracleSigner(address signer) external view returns (bool) {
        return _isMemberSigner(signer, ROLE_ORACLE);
    }

    /// @notice True when `signer` belongs to a node in the current discovery set. View.
    function isDiscoverySigner(address signer) external view returns (bool) {
        return _isMemberSigner(signer, ROLE_DISCOVERY);
    }

    /// @inheritdoc INodeRegistry
    function authorityCount() external view returns (uint256) {
        return _setSize(ROLE_AUTHORITY);
    }

    /// @inheritdoc INodeRegistry
    function oracleCount() external view returns (uint256) {
        return _setSize(ROLE_ORACLE);
    }

    /// @notice Size of the discovery set. View.
    function discoveryCount() external view returns (uint256) {
        return _setSize(ROLE_DISCOVERY);
    }

    /// @inheritdoc INodeRegistry
    function oracleNodeOf(address signer) external view returns (bytes32 nodeKey, uint64 memberSince) {
        bytes32 key = _nodeKeyOfSigner[signer];
        Node storage node = _nodes[key];
        if (key == bytes32(0) || node.memberRoles & ROLE_ORACLE == 0) return (bytes32(0), 0);
        return (key, node.oracleSince);
    }

    /// @inheritdoc INodeRegistry
    function countOraclesMemberSince(bytes32[] calldata nodeKeys, uint64 since) external view returns (uint256 count) {
        for (uint256 i = 0; i < nodeKeys.length; ++i) {
            Node storage node = _nodes[nodeKeys[i]];
            if (node.memberRoles & ROLE_ORACLE != 0 && node.oracleSince <= since) ++count;
        }
    }

    /// @inheritdoc INodeRegistry
    function authorityQuorum() public view returns (uint256) {
        uint256 floor = _params.attestationFloor;
        uint256 share = (_setSize(ROLE_AUTHORITY) * _params.attestationBps + 9_999) / 10_000;
        return share > floor ? share : floor;
    }

    /// @inheritdoc INodeRegistry
    function checkAuthorityAttestations(bytes32 digest, bytes[] calldata attestations) external view {
        _checkAttestations(digest, attestations);
    }

    /// @notice The EIP-712 `NodeConsent` digest a signer signs (and the node key signs, Ed25519). View.
    function consentDigest(bytes32 nodeKey, address operator, address signer, uint256 nonce, uint64 deadline)
        public
        view
        returns (bytes32)
    {
        return _hashTypedDataV4(keccak256(abi.encode(CONSENT_TYPEHASH, nodeKey, operator, signer, nonce, deadline)));
    }

    /// @notice The EIP-712 `NodeReclaim` digest authorities sign to hand `nodeKey` (registration
    /// `contestedSeq`) to the holder who consented with `consentDigest_`. View.
    function reclaimDigest(bytes32 nodeKey, uint32 contestedSeq, bytes32 consentDigest_) public view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(RECLAIM_TYPEHASH, nodeKey, contestedSeq, consentDigest_)));
    }

    // ---------------------------------------------------------------- internals

    /// @dev A reclaim's first half: the contested node leaves its sets and its record is
    /// deleted; its bonded and unbonding stake become the former operator's released stake.
    function _release(bytes32 nodeKey, Node storage node) private {
        for (uint8 role = ROLE_DISCOVERY; role <= ROLE_ORACLE; role <<= 1) {
            if (node.memberRoles & role != 0) _leave(nodeKey, node, role);
        }
        address previous = node.operator;
        uint256 bonded = node.bonded;
        uint256 amount = bonded + node.unbonding;
        uint64 releaseAt = uint64(block.timestamp) + _params.unbondingDelay;
        if (node.unbondingReleaseAt > releaseAt) releaseAt = node.unbondingReleaseAt;
        totalBonded -= bonded;
        totalUnbonding += bonded;
        Released storage held = _released[previous];
        held.amount = SafeCast.toUint128(held.amount + amount);
        if (releaseAt > held.releaseAt) held.releaseAt = releaseAt;
        delete _nodeKeyOfSigner[node.signer];
        delete _nodes[nodeKey];
        emit NodeReclaimed(nodeKey, previous, msg.sender, amount, held.releaseAt);
    }

    function _register(bytes32 nodeKey, address signer, uint8 roles) private {
        uint32 seq = ++registrationCount;
        Node storage node = _nodes[nodeKey];
        node.operator = msg.sender;
        node.roles = roles;
        node.registeredAt = uint64(block.timestamp);
        node.signer = signer;
        node.seq = seq;
        _nodeKeyOfSigner[signer] = nodeKey;
        emit NodeRegistered(nodeKey, msg.sender, signer, roles, seq);
    }

    /// @dev Checks and consumes `signer`'s consent to serve `nodeKey` for the caller.
    function _useConsent(bytes32 nodeKey, address signer, uint64 deadline, bytes calldata signature)
        private
        returns (bytes32 digest)
    {
        if (signer == address(0)) revert ZeroSigner();
        bytes32 holder = _nodeKeyOfSigner[signer];
        if (holder != bytes32(0)) revert SignerInUse(signer, holder);
        if (block.timestamp > deadline) revert ConsentExpired(deadline, block.timestamp);
        digest = consentDigest(nodeKey, msg.sender, signer, _useNonce(signer), deadline);
        (address recovered, ECDSA.RecoverError err,) = ECDSA.tryRecoverCalldata(digest, signature);
        if (err != ECDSA.RecoverError.NoError || recovered != signer) revert InvalidSignerConsent(signer);
    }

    function _checkKeyProof(bytes calldata keyProof) private pure {
        if (keyProof.length != KEY_PROOF_LENGTH) revert InvalidKeyProofLength(keyProof.length);
    }

    /// @dev Ascending order makes distinctness an O(1) comparison per signature; the caller pays the loop.
    function _checkAttestations(bytes32 digest, bytes[] calldata attestations) private view {
        uint256 threshold = authorityQuorum();
        if (attestations.length < threshold) revert BelowThreshold(attestations.length, threshold);
        address previous = address(0);
        for (uint256 i = 0; i < attestations.length; ++i) {
            (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecoverCalldata(digest, attestations[i]);
            if (err != ECDSA.RecoverError.NoError) revert InvalidAttestationSignature(i);
            if (signer <= previous) revert SignersNotAscending(i, signer);
            if (!_isMemberSigner(signer, ROLE_AUTHORITY)) revert NotAuthority(signer);
            previous = signer;
        }
    }

    function _stake(bytes32 nodeKey, uint256 amount) private {
        Node storage node = _operatorNode(nodeKey);
        if (amount == 0) revert ZeroAmount();
        uint128 bondedAfter = SafeCast.toUint128(uint256(node.bonded) + amount);
        node.bonded = bondedAfter;
        totalBonded += amount;
        emit Staked(nodeKey, msg.sender, amount, bondedAfter);
        _syncRoles(nodeKey, node);
        token.safeTransferFrom(msg.sender, address(this), amount);
    }

    function _setParams(Params memory p) private {
        if (p.minStakeDiscovery == 0) revert ZeroMinimumStake(ROLE_DISCOVERY);
        if (p.minStakeAuthority == 0) revert ZeroMinimumStake(ROLE_AUTHORITY);
        if (p.minStakeOracle == 0) revert ZeroMinimumStake(ROLE_ORACLE);
        if (p.maxAuthorities == 0 || p.maxAuthorities > MAX_SET_CAP) revert InvalidSetCap(p.maxAuthorities);
        if (p.maxOracles == 0 || p.maxOracles > MAX_SET_CAP) revert InvalidSetCap(p.maxOracles);
        if (p.unbondingDelay < minUnbondingDelay) revert UnbondingDelayTooShort(p.unbondingDelay, minUnbondingDelay);
        if (p.attestationFloor == 0 || p.attestationFloor > p.maxAuthorities || p.attestationBps > 10_000) {
            revert InvalidAttestationThreshold(p.attestationFloor, p.attestationBps, p.maxAuthorities);
        }
        if (p.approvalRoles & ~SET_ROLES != 0) revert InvalidApprovalRoles(p.approvalRoles);
        _params = p;
        emit ParamsChanged(p);
    }

    function _setSlashRecipient(address recipient) private {
        if (recipient == address(0)) revert ZeroSlashRecipient();
        emit SlashRecipientChanged(slashRecipient, recipient);
        slashRecipient = recipient;
    }

    function _onlySlasher() private view {
        if (!hasRole(SLASHER_ROLE, msg.sender) && !hasRole(GOVERNANCE_ROLE, msg.sender)) {
            revert NotSlasher(msg.sender);
        }
    }

    function _checkRoles(uint8 roles) private pure {
        if (roles == 0 || roles & ~ALL_ROLES != 0) revert InvalidRoles(roles);
    }

    function _existingNode(bytes32 nodeKey) private view returns (Node storage node) {
        node = _nodes[nodeKey];
        if (node.operator == address(0)) revert UnknownNode(nodeKey);
    }

    function _operatorNode(bytes32 nodeKey) private view returns (Node storage node) {
        node = _existingNode(nodeKey);
        if (node.operator != msg.sender) revert NotOperator(nodeKey, msg.sender);
    }

    function _info(bytes32 nodeKey, Node storage node) private view returns (NodeInfo memory) {
        return NodeInfo({
            nodeKey: nodeKey,
            operator: node.operator,
            signer: node.signer,
            roles: node.roles,
            approvedRoles: node.approvedRoles,
            memberRoles: node.memberRoles,
            seq: node.seq,
            registeredAt: node.registeredAt,
            bonded: node.bonded,
            unbonding: node.unbonding,
            unbondingReleaseAt: node.unbondingReleaseAt,
            discoverySince: node.discoverySince,
            authoritySince: node.authoritySince,
            oracleSince: node.oracleSince
        });
    }
}
