// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {EnumerableSet} from "@openzeppelin/contracts/utils/structs/EnumerableSet.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {INodeRegistry} from "./interfaces/INodeRegistry.sol";

/// @title NodeRegistry
/// @notice Registry and staking for PSP nodes. Owns: node records keyed by the
/// node's Ed25519 identity key, their operator and EVM signer, role bits, bonded
/// and unbonding PSP stake, slashing, and the derived discovery / authority /
/// oracle sets. Trusts: the PSP token (a plain OpenZeppelin ERC20 without hooks)
/// and holders of GOVERNANCE_ROLE / SLASHER_ROLE.
/// @dev Per role a candidate set (OZ EnumerableSet) holds the nodes that met the
/// role's conditions at their last update; every set read filters candidates
/// against the current parameters, so reads are views costing O(candidates).
/// Candidacy needs the role's minimum stake, which keeps the candidate lists, and
/// so the gas of `isOracleSigner` inside other contracts, bounded by locked stake.
/// Invariant: token.balanceOf(this) == totalBonded + totalUnbonding.
contract NodeRegistry is INodeRegistry, AccessControl, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;
    using EnumerableSet for EnumerableSet.Bytes32Set;

    // ---------------------------------------------------------------- constants

    /// @notice Role bit: onion relay.
    uint8 public constant ROLE_ONION = 1;
    /// @notice Role bit: discovery node (also needs governance approval and age).
    uint8 public constant ROLE_DISCOVERY = 2;
    /// @notice Role bit: authority node (PKI bridge, certificate issuer).
    uint8 public constant ROLE_AUTHORITY = 4;
    /// @notice Role bit: oracle node (receipts, bandwidth settlement).
    uint8 public constant ROLE_ORACLE = 8;
    /// @notice Union of every defined role bit.
    uint8 public constant ALL_ROLES = 15;
    /// @notice Upper bound on the discovery set returned by `discoverySet()`.
    uint256 public constant MAX_DISCOVERY_NODES = 128;

    /// @notice Sets parameters, approves discovery nodes, sets the slash recipient, may slash.
    bytes32 public constant GOVERNANCE_ROLE = keccak256("GOVERNANCE_ROLE");
    /// @notice May slash stake with evidence.
    bytes32 public constant SLASHER_ROLE = keccak256("SLASHER_ROLE");

    // ---------------------------------------------------------------- types

    /// @notice Governance parameters. Minimums are in token base units, times in seconds.
    struct Params {
        uint256 minStakeOnion;
        uint256 minStakeDiscovery;
        uint256 minStakeAuthority;
        uint256 minStakeOracle;
        uint64 unbondingDelay;
        uint64 minDiscoveryAge;
        uint16 maxAuthorities;
        uint16 maxOracles;
    }

    /// @dev Packed into three slots; amounts fit 128 bits (SafeCast checks).
    struct Node {
        address operator;
        uint8 roles;
        bool discoveryApproved;
        uint64 registeredAt;
        address signer;
        uint64 unbondingReleaseAt;
        uint128 bonded;
        uint128 unbonding;
    }

    /// @notice A node record as returned by `getNode` / `nodesPage`.
    struct NodeInfo {
        bytes32 nodeKey;
        address operator;
        address signer;
        uint8 roles;
        bool discoveryApproved;
        uint64 registeredAt;
        uint256 bonded;
        uint256 unbonding;
        uint64 unbondingReleaseAt;
    }

    // ---------------------------------------------------------------- storage

    /// @notice The staking token (PSP).
    IERC20 public immutable token;

    Params private _params;

    /// @notice Where slashed stake is sent (the devnet points it at BandwidthRewards).
    address public slashRecipient;
    /// @notice Sum of bonded stake over all nodes.
    uint256 public totalBonded;
    /// @notice Sum of unbonding stake over all nodes.
    uint256 public totalUnbonding;

    mapping(bytes32 nodeKey => Node) private _nodes;
    mapping(address signer => bytes32 nodeKey) private _nodeKeyOfSigner;
    EnumerableSet.Bytes32Set private _allNodes;
    EnumerableSet.Bytes32Set private _discoveryCandidates;
    EnumerableSet.Bytes32Set private _authorityCandidates;
    EnumerableSet.Bytes32Set private _oracleCandidates;

    // ---------------------------------------------------------------- events

    /// @notice A node was registered by `operator`.
    event NodeRegistered(bytes32 indexed nodeKey, address indexed operator, address indexed signer, uint8 roles);
    /// @notice A node's role bits changed.
    event RolesChanged(bytes32 indexed nodeKey, uint8 oldRoles, uint8 newRoles);
    /// @notice A node's EVM signer changed.
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
    /// @notice Governance approved or revoked a node for the discovery role.
    event DiscoveryApprovalChanged(bytes32 indexed nodeKey, bool approved);
    /// @notice Governance changed the parameters.
    event ParamsChanged(Params params);
    /// @notice Governance changed the slash recipient.
    event SlashRecipientChanged(address indexed oldRecipient, address indexed newRecipient);
    /// @notice A node entered (`isCandidate` true) or left a role's candidate list.
    event CandidacyChanged(bytes32 indexed nodeKey, uint8 indexed role, bool isCandidate);

    // ---------------------------------------------------------------- errors

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
    /// @notice maxAuthorities and maxOracles must be non-zero.
    error ZeroSetCap();
    /// @notice `role` must be exactly one defined role bit.
    error InvalidRole(uint8 role);

    // ---------------------------------------------------------------- construction

    /// @param token_ The PSP token staked here.
    /// @param admin Receives DEFAULT_ADMIN_ROLE and GOVERNANCE_ROLE, and is the first slash recipient.
    /// @param initialParams Initial parameters (see `setParams` for the rules).
    constructor(IERC20 token_, address admin, Params memory initialParams) {
        token = token_;
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
    function registerNode(bytes32 nodeKey, address signer, uint8 roles) external {
        if (nodeKey == bytes32(0)) revert ZeroNodeKey();
        if (_nodes[nodeKey].operator != address(0)) revert NodeAlreadyRegistered(nodeKey);
        _checkRoles(roles);
        _checkSignerFree(signer);
        _nodes[nodeKey] = Node({
            operator: msg.sender,
            roles: roles,
            discoveryApproved: false,
            registeredAt: uint64(block.timestamp),
            signer: signer,
            unbondingReleaseAt: 0,
            bonded: 0,
            unbonding: 0
        });
        _nodeKeyOfSigner[signer] = nodeKey;
        _allNodes.add(nodeKey);
        emit NodeRegistered(nodeKey, msg.sender, signer, roles);
    }

    /// @notice Replaces a node's role bits. Operator only.
    function setRoles(bytes32 nodeKey, uint8 roles) external {
        Node storage node = _operatorNode(nodeKey);
        _checkRoles(roles);
        uint8 oldRoles = node.roles;
        node.roles = roles;
        emit RolesChanged(nodeKey, oldRoles, roles);
        _syncCandidacy(nodeKey, node);
    }

    /// @notice Replaces a node's EVM signer. Operator only.
    function setSigner(bytes32 nodeKey, address newSigner) external {
        Node storage node = _operatorNode(nodeKey);
        _checkSignerFree(newSigner);
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
        delete _nodeKeyOfSigner[node.signer];
        _allNodes.remove(nodeKey);
        // Candidacy needs a non-zero minimum stake, so a node without stake is in no
        // candidate list; remove defensively anyway so no stale key can survive.
        _discoveryCandidates.remove(nodeKey);
        _authorityCandidates.remove(nodeKey);
        _oracleCandidates.remove(nodeKey);
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
        _syncCandidacy(nodeKey, node);
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

    // ---------------------------------------------------------------- slashing and governance

    /// @notice Slashes up to `amount` from the node, bonded stake first, then unbonding,
    /// and sends it to `slashRecipient`. SLASHER_ROLE or GOVERNANCE_ROLE.
    /// @param evidenceHash Hash of the off-chain evidence, recorded in the event.
    function slash(bytes32 nodeKey, uint256 amount, bytes32 evidenceHash) external nonReentrant {
        if (!hasRole(SLASHER_ROLE, msg.sender) && !hasRole(GOVERNANCE_ROLE, msg.sender)) {
            revert NotSlasher(msg.sender);
        }
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
        _syncCandidacy(nodeKey, node);
        token.safeTransfer(recipient, fromBonded + fromUnbonding);
    }

    /// @notice Replaces the parameters. GOVERNANCE_ROLE.
    /// @dev Discovery, authority and oracle minimums and both caps must be non-zero.
    /// A raised minimum takes effect at once (reads filter candidates); after a lowered
    /// one, nodes that now qualify join their candidate list at their next update or
    /// through the permissionless `refreshCandidacy`.
    function setParams(Params calldata newParams) external onlyRole(GOVERNANCE_ROLE) {
        _setParams(newParams);
    }

    /// @notice Sets where slashed stake goes. GOVERNANCE_ROLE.
    function setSlashRecipient(address recipient) external onlyRole(GOVERNANCE_ROLE) {
        _setSlashRecipient(recipient);
    }

    /// @notice Approves (or revokes) a node for the discovery role. GOVERNANCE_ROLE.
    function approveDiscovery(bytes32 nodeKey, bool approved) external onlyRole(GOVERNANCE_ROLE) {
        Node storage node = _existingNode(nodeKey);
        node.discoveryApproved = approved;
        emit DiscoveryApprovalChanged(nodeKey, approved);
        _syncCandidacy(nodeKey, node);
    }

    /// @notice Re-evaluates the candidate lists for `nodeKeys` against the current
    /// parameters (useful after governance lowers a minimum). Anyone may call it.
    function refreshCandidacy(bytes32[] calldata nodeKeys) external {
        for (uint256 i = 0; i < nodeKeys.length; ++i) {
            _syncCandidacy(nodeKeys[i], _existingNode(nodeKeys[i]));
        }
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

    /// @notice True when the node is eligible for `role` (one ROLE_* bit) right now:
    /// bit set, bonded stake >= the role minimum, a member of the role's candidate list,
    /// and for discovery also approved and registered at least `minDiscoveryAge` ago.
    /// Eligibility does not consider the set caps. View.
    function isEligible(bytes32 nodeKey, uint8 role) external view returns (bool) {
        if (role == ROLE_ONION) {
            Node storage node = _nodes[nodeKey];
            return node.operator != address(0) && node.roles & ROLE_ONION != 0
                && node.bonded >= _params.minStakeOnion;
        }
        if (role != ROLE_DISCOVERY && role != ROLE_AUTHORITY && role != ROLE_ORACLE) revert InvalidRole(role);
        return _candidates(role).contains(nodeKey) && _eligible(role, _nodes[nodeKey]);
    }

    // ---------------------------------------------------------------- views: sets

    /// @notice The discovery set: eligible discovery nodes ordered by bonded stake
    /// descending, ties by node key ascending, at most MAX_DISCOVERY_NODES. View.
    function discoverySet() external view returns (bytes32[] memory nodeKeys, address[] memory signers) {
        return _rankedSet(ROLE_DISCOVERY, MAX_DISCOVERY_NODES);
    }

    /// @notice The authority set, ordered as `discoverySet`, at most maxAuthorities. View.
    function authoritySet() external view returns (bytes32[] memory nodeKeys, address[] memory signers) {
        return _rankedSet(ROLE_AUTHORITY, _params.maxAuthorities);
    }

    /// @notice The oracle set, ordered as `discoverySet`, at most maxOracles. View.
    function oracleSet() external view returns (bytes32[] memory nodeKeys, address[] memory signers) {
        return _rankedSet(ROLE_ORACLE, _params.maxOracles);
    }

    /// @inheritdoc INodeRegistry
    function isAuthoritySigner(address signer) external view returns (bool) {
        (bool isMember,) = _membership(ROLE_AUTHORITY, _params.maxAuthorities, signer, true);
        return isMember;
    }

    /// @inheritdoc INodeRegistry
    function isOracleSigner(address signer) external view returns (bool) {
        (bool isMember,) = _membership(ROLE_ORACLE, _params.maxOracles, signer, true);
        return isMember;
    }

    /// @inheritdoc INodeRegistry
    function authorityCount() external view returns (uint256) {
        (, uint256 size) = _membership(ROLE_AUTHORITY, _params.maxAuthorities, address(0), false);
        return size;
    }

    /// @inheritdoc INodeRegistry
    function oracleCount() external view returns (uint256) {
        (, uint256 size) = _membership(ROLE_ORACLE, _params.maxOracles, address(0), false);
        return size;
    }

    /// @inheritdoc INodeRegistry
    function oracleMembership(address signer) external view returns (bool isMember, uint256 setSize) {
        return _membership(ROLE_ORACLE, _params.maxOracles, signer, false);
    }

    /// @notice Size of the discovery set. View.
    function discoveryCount() external view returns (uint256) {
        (, uint256 size) = _membership(ROLE_DISCOVERY, MAX_DISCOVERY_NODES, address(0), false);
        return size;
    }

    /// @notice True when `signer` belongs to a node in the current discovery set. View.
    function isDiscoverySigner(address signer) external view returns (bool) {
        (bool isMember,) = _membership(ROLE_DISCOVERY, MAX_DISCOVERY_NODES, signer, true);
        return isMember;
    }

    // ---------------------------------------------------------------- internals

    function _stake(bytes32 nodeKey, uint256 amount) private {
        Node storage node = _operatorNode(nodeKey);
        if (amount == 0) revert ZeroAmount();
        uint128 bondedAfter = SafeCast.toUint128(uint256(node.bonded) + amount);
        node.bonded = bondedAfter;
        totalBonded += amount;
        emit Staked(nodeKey, msg.sender, amount, bondedAfter);
        _syncCandidacy(nodeKey, node);
        token.safeTransferFrom(msg.sender, address(this), amount);
    }

    function _setParams(Params memory params_) private {
        if (params_.minStakeDiscovery == 0) revert ZeroMinimumStake(ROLE_DISCOVERY);
        if (params_.minStakeAuthority == 0) revert ZeroMinimumStake(ROLE_AUTHORITY);
        if (params_.minStakeOracle == 0) revert ZeroMinimumStake(ROLE_ORACLE);
        if (params_.maxAuthorities == 0 || params_.maxOracles == 0) revert ZeroSetCap();
        _params = params_;
        emit ParamsChanged(params_);
    }

    function _setSlashRecipient(address recipient) private {
        if (recipient == address(0)) revert ZeroSlashRecipient();
        emit SlashRecipientChanged(slashRecipient, recipient);
        slashRecipient = recipient;
    }

    function _checkRoles(uint8 roles) private pure {
        if (roles == 0 || roles & ~ALL_ROLES != 0) revert InvalidRoles(roles);
    }

    function _checkSignerFree(address signer) private view {
        if (signer == address(0)) revert ZeroSigner();
        bytes32 holder = _nodeKeyOfSigner[signer];
        if (holder != bytes32(0)) revert SignerInUse(signer, holder);
    }

    function _existingNode(bytes32 nodeKey) private view returns (Node storage node) {
        node = _nodes[nodeKey];
        if (node.operator == address(0)) revert UnknownNode(nodeKey);
    }

    function _operatorNode(bytes32 nodeKey) private view returns (Node storage node) {
        node = _existingNode(nodeKey);
        if (node.operator != msg.sender) revert NotOperator(nodeKey, msg.sender);
    }

    function _candidates(uint8 role) private view returns (EnumerableSet.Bytes32Set storage) {
        if (role == ROLE_DISCOVERY) return _discoveryCandidates;
        if (role == ROLE_AUTHORITY) return _authorityCandidates;
        return _oracleCandidates;
    }

    function _minStake(uint8 role) private view returns (uint256) {
        if (role == ROLE_DISCOVERY) return _params.minStakeDiscovery;
        if (role == ROLE_AUTHORITY) return _params.minStakeAuthority;
        return _params.minStakeOracle;
    }

    /// @dev Candidacy conditions that only change through a node update (so they are
    /// evaluated on update): bit set, stake at the minimum, discovery approval.
    function _qualifies(uint8 role, Node storage node) private view returns (bool) {
        if (node.roles & role == 0 || node.bonded < _minStake(role)) return false;
        return role != ROLE_DISCOVERY || node.discoveryApproved;
    }

    /// @dev Full eligibility of a candidate under the current parameters and time.
    function _eligible(uint8 role, Node storage node) private view returns (bool) {
        if (node.bonded < _minStake(role)) return false;
        if (role == ROLE_DISCOVERY) {
            return node.discoveryApproved && block.timestamp >= uint256(node.registeredAt) + _params.minDiscoveryAge;
        }
        return true;
    }

    function _syncCandidacy(bytes32 nodeKey, Node storage node) private {
        _syncRole(nodeKey, node, ROLE_DISCOVERY);
        _syncRole(nodeKey, node, ROLE_AUTHORITY);
        _syncRole(nodeKey, node, ROLE_ORACLE);
    }

    function _syncRole(bytes32 nodeKey, Node storage node, uint8 role) private {
        EnumerableSet.Bytes32Set storage set = _candidates(role);
        if (_qualifies(role, node)) {
            if (set.add(nodeKey)) emit CandidacyChanged(nodeKey, role, true);
        } else if (set.remove(nodeKey)) {
            emit CandidacyChanged(nodeKey, role, false);
        }
    }

    /// @dev True when node a (stake sa, key ka) ranks before node b.
    function _outranks(uint256 sa, bytes32 ka, uint256 sb, bytes32 kb) private pure returns (bool) {
        return sa > sb || (sa == sb && ka < kb);
    }

    /// @dev One pass over the role's candidates: the set size (eligible, capped) and,
    /// when `signer` is a candidate, whether fewer than `cap` eligible nodes outrank it.
    /// With `stopEarly`, returns as soon as membership is decided (size is then partial).
    function _membership(uint8 role, uint256 cap, address signer, bool stopEarly)
        private
        view
        returns (bool isMember, uint256 setSize)
    {
        EnumerableSet.Bytes32Set storage set = _candidates(role);
        bytes32 ownKey = signer == address(0) ? bytes32(0) : _nodeKeyOfSigner[signer];
        bool ranked = ownKey != bytes32(0) && set.contains(ownKey) && _eligible(role, _nodes[ownKey]);
        if (stopEarly && !ranked) return (false, 0);
        uint256 ownStake = ranked ? _nodes[ownKey].bonded : 0;
        uint256 ahead = 0;
        uint256 n = set.length();
        for (uint256 i = 0; i < n; ++i) {
            bytes32 key = set.at(i);
            if (!_eligible(role, _nodes[key])) continue;
            ++setSize;
            if (ranked && _outranks(_nodes[key].bonded, key, ownStake, ownKey)) {
                ++ahead;
                if (stopEarly && ahead >= cap) return (false, 0);
            }
        }
        isMember = ranked && ahead < cap;
        if (setSize > cap) setSize = cap;
    }

    /// @dev Top `cap` eligible candidates by (stake desc, key asc): insertion into a
    /// sorted buffer, O(candidates x cap), fine for views.
    function _rankedSet(uint8 role, uint256 cap)
        private
        view
        returns (bytes32[] memory nodeKeys, address[] memory signers)
    {
        EnumerableSet.Bytes32Set storage set = _candidates(role);
        uint256 n = set.length();
        uint256 bufferSize = n < cap ? n : cap;
        bytes32[] memory keys = new bytes32[](bufferSize);
        uint256[] memory stakes = new uint256[](bufferSize);
        uint256 filled = 0;
        for (uint256 i = 0; i < n; ++i) {
            bytes32 key = set.at(i);
            Node storage node = _nodes[key];
            if (_eligible(role, node)) filled = _insertRanked(keys, stakes, filled, key, node.bonded);
        }
        nodeKeys = new bytes32[](filled);
        signers = new address[](filled);
        for (uint256 i = 0; i < filled; ++i) {
            nodeKeys[i] = keys[i];
            signers[i] = _nodes[keys[i]].signer;
        }
    }

    /// @dev Inserts (key, nodeStake) into the sorted buffers holding `filled` entries,
    /// shifting lower-ranked entries down; the last one falls off when the buffer is full.
    function _insertRanked(
        bytes32[] memory keys,
        uint256[] memory stakes,
        uint256 filled,
        bytes32 key,
        uint256 nodeStake
    ) private pure returns (uint256) {
        uint256 size = keys.length;
        uint256 pos = filled;
        while (pos > 0 && _outranks(nodeStake, key, stakes[pos - 1], keys[pos - 1])) {
            if (pos < size) {
                keys[pos] = keys[pos - 1];
                stakes[pos] = stakes[pos - 1];
            }
            --pos;
        }
        if (pos < size) {
            keys[pos] = key;
            stakes[pos] = nodeStake;
            if (filled < size) ++filled;
        }
        return filled;
    }

    function _info(bytes32 nodeKey, Node storage node) private view returns (NodeInfo memory) {
        return NodeInfo({
            nodeKey: nodeKey,
            operator: node.operator,
            signer: node.signer,
            roles: node.roles,
            discoveryApproved: node.discoveryApproved,
            registeredAt: node.registeredAt,
            bonded: node.bonded,
            unbonding: node.unbonding,
            unbondingReleaseAt: node.unbondingReleaseAt
        });
    }
}
