// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {IdentityRegistry} from "./IdentityRegistry.sol";

/// @title Subscriptions
/// @notice Paid access of PSP identities to an application (docs/spec/contracts-pki.md §5: oracles check
/// subscription status before issuing stream-creation receipts).
///
/// An application owner (as recorded in the IdentityRegistry) defines plans: a price in
/// the PSP token per period. Anyone may pay a plan for an Active identity of that
/// application; the payment goes straight from the payer to `rewardPool` and the
/// identity's expiry moves to max(now, expiry) + periods * period. This contract trusts
/// the IdentityRegistry for application ownership and identity status, and the token to
/// be a standard ERC-20; it never holds tokens itself.
contract Subscriptions {
    using SafeERC20 for IERC20;

    /// @notice A price list entry. Immutable once created except for `active`, so a plan id
    /// always means one price and period (no bait and switch).
    struct Plan {
        bytes32 applicationId;
        uint256 price;
        uint64 period;
        bool active;
    }

    /// @notice The PSP token subscriptions are paid in.
    IERC20 public immutable token;
    /// @notice Source of application owners and identity status.
    IdentityRegistry public immutable identities;
    /// @notice Receives every payment.
    address public immutable rewardPool;

    /// @notice Number of plans ever created; plan ids are 1..planCount (0 is never a plan).
    uint256 public planCount;

    mapping(uint256 planId => Plan) private _plans;
    mapping(bytes32 identityId => uint64 expiry) private _expiry;

    /// @notice An application owner created a plan.
    event PlanCreated(
        uint256 indexed planId,
        bytes32 indexed applicationId,
        address indexed creator,
        uint256 price,
        uint64 period
    );
    /// @notice A plan stopped accepting payments (existing subscriptions keep their expiry).
    event PlanDeactivated(uint256 indexed planId, bytes32 indexed applicationId);
    /// @notice `payer` paid `amount` for `periods` of a plan; the identity is subscribed until `expiry`.
    event Subscribed(
        bytes32 indexed identityId,
        uint256 indexed planId,
        address indexed payer,
        uint32 periods,
        uint256 amount,
        uint64 expiry
    );
    /// @notice The unused time of a Rotated identity moved to its successor.
    event SubscriptionCarriedOver(bytes32 indexed fromIdentityId, bytes32 indexed toIdentityId, uint64 newExpiry);

    /// @notice A required address was zero.
    error ZeroAddress();
    /// @notice The application was never registered in the IdentityRegistry.
    error ApplicationNotFound(bytes32 applicationId);
    /// @notice Caller is not the application's current owner.
    error NotApplicationOwner(bytes32 applicationId, address caller);
    /// @notice A plan needs a non-zero price and a non-zero period.
    error InvalidPlanParameters(uint256 price, uint64 period);
    /// @notice No plan has this id.
    error PlanNotFound(uint256 planId);
    /// @notice The plan was deactivated by its application owner.
    error PlanInactive(uint256 planId);
    /// @notice Pay for at least one period.
    error ZeroPeriods();
    /// @notice Only Active identities can be subscribed.
    error IdentityNotActive(bytes32 identityId);
    /// @notice The identity belongs to another application than the plan.
    error WrongApplication(bytes32 identityId, bytes32 identityApplication, bytes32 planApplication);
    /// @notice price * periods does not fit in uint256.
    error PaymentOverflow(uint256 price, uint32 periods);
    /// @notice The resulting expiry does not fit in uint64; pay fewer periods.
    error ExpiryOverflow(uint256 expiry);
    /// @notice Carry-over needs an identity that was Rotated.
    error IdentityNotRotated(bytes32 identityId);
    /// @notice The Rotated identity has no unused subscription time left.
    error NothingToCarryOver(bytes32 identityId);

    /// @param token_ the PSP token
    /// @param identities_ the IdentityRegistry
    /// @param rewardPool_ receives all payments
    constructor(IERC20 token_, IdentityRegistry identities_, address rewardPool_) {
        if (address(token_) == address(0) || address(identities_) == address(0) || rewardPool_ == address(0)) {
            revert ZeroAddress();
        }
        token = token_;
        identities = identities_;
        rewardPool = rewardPool_;
    }

    /// @notice Creates a plan for an application the caller owns.
    /// @param applicationId the application (IdentityRegistry.applicationIdOf)
    /// @param price token amount per period, > 0
    /// @param period seconds per period, > 0
    /// @return planId the new plan's id
    function createPlan(bytes32 applicationId, uint256 price, uint64 period) external returns (uint256 planId) {
        _requireApplicationOwner(applicationId);
        if (price == 0 || period == 0) revert InvalidPlanParameters(price, period);
        planId = ++planCount;
        _plans[planId] = Plan({applicationId: applicationId, price: price, period: period, active: true});
        emit PlanCreated(planId, applicationId, msg.sender, price, period);
    }

    /// @notice Stops a plan from accepting payments, permanently. Callable by the
    /// application's current owner.
    /// @param planId the plan
    function deactivatePlan(uint256 planId) external {
        Plan storage plan = _requireActivePlan(planId);
        _requireApplicationOwner(plan.applicationId);
        plan.active = false;
        emit PlanDeactivated(planId, plan.applicationId);
    }

    /// @notice Pays `periods` of a plan for an identity; the caller pays (after approving this contract).
    /// @param identityId an Active identity of the plan's application
    /// @param planId an active plan
    /// @param periods number of periods, > 0
    /// @return expiry the identity's new expiry
    function subscribe(bytes32 identityId, uint256 planId, uint32 periods) external returns (uint64 expiry) {
        return _subscribe(identityId, planId, periods);
    }

    /// @notice As subscribe, but approves the payment with an ERC-2612 permit first. A permit
    /// that fails (e.g. already used by a front-runner) is ignored, so the payment still
    /// succeeds when the allowance is in place.
    /// @param identityId an Active identity of the plan's application
    /// @param planId an active plan
    /// @param periods number of periods, > 0
    /// @param permitDeadline the permit's deadline
    /// @param v permit signature v
    /// @param r permit signature r
    /// @param s permit signature s
    /// @return expiry the identity's new expiry
    function subscribeWithPermit(
        bytes32 identityId,
        uint256 planId,
        uint32 periods,
        uint256 permitDeadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external returns (uint64 expiry) {
        uint256 amount = _amount(_plans[planId].price, periods);
        // Ignore failure: a front-run permit leaves the allowance we need anyway.
        try IERC20Permit(address(token)).permit(msg.sender, address(this), amount, permitDeadline, v, r, s) {} catch {} // solhint-disable-line no-empty-blocks
        return _subscribe(identityId, planId, periods);
    }

    /// @notice Moves the unused time of a Rotated identity onto its successor (anyone may call).
    /// @param rotatedId an identity in status Rotated with time left
    /// @return newExpiry the successor's new expiry
    function carryOverSubscription(bytes32 rotatedId) external returns (uint64 newExpiry) {
        IdentityRegistry.Identity memory old = identities.getIdentity(rotatedId);
        if (old.status != IdentityRegistry.IdentityStatus.Rotated) revert IdentityNotRotated(rotatedId);
        uint64 oldExpiry = _expiry[rotatedId];
        if (oldExpiry <= block.timestamp) revert NothingToCarryOver(rotatedId);
        uint256 remaining = oldExpiry - block.timestamp;
        uint256 successorExpiry = _expiry[old.successor];
        uint256 start = successorExpiry > block.timestamp ? successorExpiry : block.timestamp;
        newExpiry = _toExpiry(start + remaining);
        _expiry[rotatedId] = uint64(block.timestamp);
        _expiry[old.successor] = newExpiry;
        emit SubscriptionCarriedOver(rotatedId, old.successor, newExpiry);
    }

    /// @notice True when the identity is Active now and paid up strictly beyond `time`.
    /// @param identityId the identity
    /// @param time unix seconds
    /// @return whether it is subscribed at `time`
    function isSubscribed(bytes32 identityId, uint64 time) external view returns (bool) {
        return _expiry[identityId] > time && identities.isActive(identityId);
    }

    /// @notice Unix time at which the identity's subscription ends (0 when never subscribed).
    /// @param identityId the identity
    /// @return the expiry
    function subscriptionExpiry(bytes32 identityId) external view returns (uint64) {
        return _expiry[identityId];
    }

    /// @notice A plan (applicationId zero when no such plan).
    /// @param planId the plan
    /// @return the stored plan
    function getPlan(uint256 planId) external view returns (Plan memory) {
        return _plans[planId];
    }

    function _subscribe(bytes32 identityId, uint256 planId, uint32 periods) private returns (uint64 expiry) {
        Plan storage plan = _requireActivePlan(planId);
        if (periods == 0) revert ZeroPeriods();
        if (!identities.isActive(identityId)) revert IdentityNotActive(identityId);
        bytes32 identityApp = identities.applicationOf(identityId);
        if (identityApp != plan.applicationId) revert WrongApplication(identityId, identityApp, plan.applicationId);
        uint256 amount = _amount(plan.price, periods);
        uint256 current = _expiry[identityId];
        uint256 start = current > block.timestamp ? current : block.timestamp;
        // uint64 * uint32 < 2^96: no overflow in uint256.
        expiry = _toExpiry(start + uint256(plan.period) * periods);

        _expiry[identityId] = expiry;
        emit Subscribed(identityId, planId, msg.sender, periods, amount, expiry);
        token.safeTransferFrom(msg.sender, rewardPool, amount);
    }

    function _amount(uint256 price, uint32 periods) private pure returns (uint256) {
        if (periods != 0 && price > type(uint256).max / periods) revert PaymentOverflow(price, periods);
        return price * periods;
    }

    function _toExpiry(uint256 expiry) private pure returns (uint64) {
        if (expiry > type(uint64).max) revert ExpiryOverflow(expiry);
        return uint64(expiry);
    }

    function _requireActivePlan(uint256 planId) private view returns (Plan storage plan) {
        plan = _plans[planId];
        if (plan.period == 0) revert PlanNotFound(planId);
        if (!plan.active) revert PlanInactive(planId);
    }

    function _requireApplicationOwner(bytes32 applicationId) private view {
        address owner = identities.applicationOwner(applicationId);
        if (owner == address(0)) revert ApplicationNotFound(applicationId);
        if (owner != msg.sender) revert NotApplicationOwner(applicationId, msg.sender);
    }
}
