// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {EnumerableSet} from "@openzeppelin/contracts/utils/structs/EnumerableSet.sol";

/// @title NodeRoleSets
/// @notice Node records and the capped discovery, authority and oracle sets of the
/// NodeRegistry, kept current on every change so that membership is an O(1) read.
/// @dev A node *qualifies* for a set role R when its R bit is set, its bonded stake
/// is at R's minimum and, when R needs approval, governance approved it. `since`
/// (per role) is the time it started qualifying while it waits, and the time it
/// joined while it is a member. It may join once `since + delay(R)` has passed
/// (activation delay): at its next update when a seat is free or it outranks the
/// lowest member (who is evicted), or through the permissionless `activate`. Losing
/// qualification (unstake, slash, roles, approval, parameters) removes it at once.
/// Ranking: bonded stake descending, then registration order (earlier first), which
/// no one can choose. Loops: eviction scans the set (at most its cap, paid by the
/// joiner); parameter changes sweep the sets (paid by governance).
abstract contract NodeRoleSets {
    using EnumerableSet for EnumerableSet.Bytes32Set;

    /// @notice Role bit: onion relay.
    uint8 public constant ROLE_ONION = 1;
    /// @notice Role bit: discovery node.
    uint8 public constant ROLE_DISCOVERY = 2;
    /// @notice Role bit: authority node (PKI bridge, certificate issuer).
    uint8 public constant ROLE_AUTHORITY = 4;
    /// @notice Role bit: oracle node (receipts, bandwidth settlement).
    uint8 public constant ROLE_ORACLE = 8;
    /// @notice Union of every defined role bit.
    uint8 public constant ALL_ROLES = 15;
    /// @notice The roles with a capped set.
    uint8 public constant SET_ROLES = 14;
    /// @notice Cap of the discovery set.
    uint256 public constant MAX_DISCOVERY_NODES = 128;
    /// @notice Upper bound of maxAuthorities and maxOracles (bounds every set loop).
    uint16 public constant MAX_SET_CAP = 64;

    /// @notice Governance parameters. Minimums are in token base units, times in seconds.
    /// `minDiscoveryAge` and `activationDelay` are the activation delays of the
    /// discovery and of the authority and oracle roles, counted from qualification.
    /// `approvalRoles`: set roles that also need governance approval.
    /// Authority quorum = max(attestationFloor, ceil(authorityCount * attestationBps / 10000)).
    struct Params {
        uint256 minStakeOnion;
        uint256 minStakeDiscovery;
        uint256 minStakeAuthority;
        uint256 minStakeOracle;
        uint64 unbondingDelay;
        uint64 minDiscoveryAge;
        uint64 activationDelay;
        uint16 maxAuthorities;
        uint16 maxOracles;
        uint16 attestationFloor;
        uint16 attestationBps;
        uint8 approvalRoles;
    }

    /// @dev Four slots; amounts fit 128 bits (SafeCast checks on stake).
    struct Node {
        address operator;
        uint8 roles;
        uint8 approvedRoles;
        uint8 memberRoles;
        uint64 registeredAt;
        address signer;
        uint64 unbondingReleaseAt;
        uint32 seq;
        uint128 bonded;
        uint128 unbonding;
        uint64 discoverySince;
        uint64 authoritySince;
        uint64 oracleSince;
    }

    Params internal _params;
    mapping(bytes32 nodeKey => Node) internal _nodes;
    mapping(address signer => bytes32 nodeKey) internal _nodeKeyOfSigner;
    EnumerableSet.Bytes32Set private _discoverySet;
    EnumerableSet.Bytes32Set private _authoritySet;
    EnumerableSet.Bytes32Set private _oracleSet;

    /// @notice A node started (`isCandidate` true) or stopped qualifying for a set role.
    event CandidacyChanged(bytes32 indexed nodeKey, uint8 indexed role, bool isCandidate);
    /// @notice A node joined (`isMember` true) or left a role's set.
    event SetMembershipChanged(bytes32 indexed nodeKey, uint8 indexed role, bool isMember);
    /// @notice `evicted` left a full set because `by` outranks it, or because the cap fell.
    event Evicted(bytes32 indexed evicted, uint8 indexed role, bytes32 indexed by);

    /// @notice `role` must be exactly one defined role bit (a set role where a set is meant).
    error InvalidRole(uint8 role);
    /// @notice The node does not qualify for `role` (bit, minimum stake, approval).
    error NotQualified(bytes32 nodeKey, uint8 role);
    /// @notice The node qualifies but its activation delay runs until `activatesAt`.
    error ActivationPending(bytes32 nodeKey, uint8 role, uint64 activatesAt);
    /// @notice The node is already in the set.
    error AlreadyMember(bytes32 nodeKey, uint8 role);
    /// @notice The set is full and the node does not outrank its lowest member.
    error DoesNotOutrank(bytes32 nodeKey, uint8 role, bytes32 lowest);

    // ---------------------------------------------------------------- joining and leaving

    /// @dev Re-evaluates every set role of a node after one of its updates.
    function _syncRoles(bytes32 key, Node storage node) internal {
        _syncRole(key, node, ROLE_DISCOVERY, false);
        _syncRole(key, node, ROLE_AUTHORITY, false);
        _syncRole(key, node, ROLE_ORACLE, false);
    }

    /// @dev Leaves or joins as the node's state says. With `strict` (activate), a node
    /// that cannot join reverts with the reason instead of staying a candidate.
    function _syncRole(bytes32 key, Node storage node, uint8 role, bool strict) internal {
        bool member = node.memberRoles & role != 0;
        uint64 since = _since(node, role);
        if (!_qualifies(role, node)) {
            if (member) _leave(key, node, role);
            if (since != 0) {
                _setSince(node, role, 0);
                emit CandidacyChanged(key, role, false);
            }
            if (strict) revert NotQualified(key, role);
            return;
        }
        if (member) {
            if (strict) revert AlreadyMember(key, role);
            return;
        }
        if (since == 0) {
            since = uint64(block.timestamp);
            _setSince(node, role, since);
            emit CandidacyChanged(key, role, true);
        }
        uint64 activatesAt = since + _delay(role);
        if (block.timestamp < activatesAt) {
            if (strict) revert ActivationPending(key, role, activatesAt);
            return;
        }
        _tryJoin(key, node, role, strict);
    }

    function _tryJoin(bytes32 key, Node storage node, uint8 role, bool strict) private {
        EnumerableSet.Bytes32Set storage set = _set(role);
        if (set.length() >= _cap(role)) {
            bytes32 lowest = _lowest(set);
            if (!_outranks(node, _nodes[lowest])) {
                if (strict) revert DoesNotOutrank(key, role, lowest);
                return;
            }
            _leave(lowest, _nodes[lowest], role);
            emit Evicted(lowest, role, key);
        }
        set.add(key);
        node.memberRoles |= role;
        _setSince(node, role, uint64(block.timestamp));
        emit SetMembershipChanged(key, role, true);
    }

    /// @dev Removes a member; `since` keeps its join time, so a node that still
    /// qualifies waits again from there (its time in the set counts as age).
    function _leave(bytes32 key, Node storage node, uint8 role) internal {
        _set(role).remove(key);
        node.memberRoles &= ~role;
        emit SetMembershipChanged(key, role, false);
    }

    /// @dev After a parameter change: members that no longer qualify leave, then the
    /// lowest leave while a set exceeds its cap. O(cap) per set, O(cap^2) when a cap falls.
    function _sweepSets() internal {
        for (uint8 role = ROLE_DISCOVERY; role <= ROLE_ORACLE; role <<= 1) {
            EnumerableSet.Bytes32Set storage set = _set(role);
            for (uint256 i = set.length(); i > 0; --i) {
                bytes32 key = set.at(i - 1);
                Node storage node = _nodes[key];
                if (!_qualifies(role, node)) {
                    _leave(key, node, role);
                    _setSince(node, role, 0);
                    emit CandidacyChanged(key, role, false);
                }
            }
            uint256 cap = _cap(role);
            while (set.length() > cap) {
                bytes32 lowest = _lowest(set);
                _leave(lowest, _nodes[lowest], role);
                emit Evicted(lowest, role, bytes32(0));
            }
        }
    }

    // ---------------------------------------------------------------- rules

    /// @dev Candidacy: bit set, stake at the minimum, approval where the role needs it.
    function _qualifies(uint8 role, Node storage node) internal view returns (bool) {
        if (node.roles & role == 0 || node.bonded < _minStake(role)) return false;
        return _params.approvalRoles & role == 0 || node.approvedRoles & role != 0;
    }

    /// @dev True when node a ranks before node b: more stake, or equal stake and registered earlier.
    function _outranks(Node storage a, Node storage b) internal view returns (bool) {
        uint256 sa = a.bonded;
        uint256 sb = b.bonded;
        return sa > sb || (sa == sb && a.seq < b.seq);
    }

    function _lowest(EnumerableSet.Bytes32Set storage set) private view returns (bytes32 lowest) {
        uint256 n = set.length();
        lowest = set.at(0);
        for (uint256 i = 1; i < n; ++i) {
            bytes32 key = set.at(i);
            if (_outranks(_nodes[lowest], _nodes[key])) lowest = key;
        }
    }

    function _minStake(uint8 role) internal view returns (uint256) {
        if (role == ROLE_ONION) return _params.minStakeOnion;
        if (role == ROLE_DISCOVERY) return _params.minStakeDiscovery;
        if (role == ROLE_AUTHORITY) return _params.minStakeAuthority;
        return _params.minStakeOracle;
    }

    function _delay(uint8 role) internal view returns (uint64) {
        return role == ROLE_DISCOVERY ? _params.minDiscoveryAge : _params.activationDelay;
    }

    function _cap(uint8 role) internal view returns (uint256) {
        if (role == ROLE_DISCOVERY) return MAX_DISCOVERY_NODES;
        if (role == ROLE_AUTHORITY) return _params.maxAuthorities;
        return _params.maxOracles;
    }

    function _set(uint8 role) internal view returns (EnumerableSet.Bytes32Set storage) {
        if (role == ROLE_DISCOVERY) return _discoverySet;
        if (role == ROLE_AUTHORITY) return _authoritySet;
        return _oracleSet;
    }

    function _since(Node storage node, uint8 role) internal view returns (uint64) {
        if (role == ROLE_DISCOVERY) return node.discoverySince;
        if (role == ROLE_AUTHORITY) return node.authoritySince;
        return node.oracleSince;
    }

    function _setSince(Node storage node, uint8 role, uint64 value) private {
        if (role == ROLE_DISCOVERY) node.discoverySince = value;
        else if (role == ROLE_AUTHORITY) node.authoritySince = value;
        else node.oracleSince = value;
    }

    function _checkSetRole(uint8 role) internal pure {
        if (role != ROLE_DISCOVERY && role != ROLE_AUTHORITY && role != ROLE_ORACLE) revert InvalidRole(role);
    }

    // ---------------------------------------------------------------- reads

    /// @dev O(1): the signer's node is in `role`'s set.
    function _isMemberSigner(address signer, uint8 role) internal view returns (bool) {
        bytes32 key = _nodeKeyOfSigner[signer];
        return key != bytes32(0) && _nodes[key].memberRoles & role != 0;
    }

    function _setSize(uint8 role) internal view returns (uint256) {
        return _set(role).length();
    }

    /// @dev The set's members in rank order (insertion sort in memory; views only).
    function _rankedSet(uint8 role) internal view returns (bytes32[] memory keys, address[] memory signers) {
        EnumerableSet.Bytes32Set storage set = _set(role);
        uint256 n = set.length();
        keys = new bytes32[](n);
        signers = new address[](n);
        for (uint256 i = 0; i < n; ++i) {
            bytes32 key = set.at(i);
            uint256 pos = i;
            while (pos > 0 && _outranks(_nodes[key], _nodes[keys[pos - 1]])) {
                keys[pos] = keys[pos - 1];
                --pos;
            }
            keys[pos] = key;
        }
        for (uint256 i = 0; i < n; ++i) signers[i] = _nodes[keys[i]].signer;
    }
}
