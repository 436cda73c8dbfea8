// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";

/// @title PSPTimelock
/// @notice OpenZeppelin's TimelockController, unchanged, under a project name so the
/// build emits its artifact. Deployments give it DEFAULT_ADMIN_ROLE and GOVERNANCE_ROLE
/// of the NodeRegistry and DEFAULT_ADMIN_ROLE of BandwidthRewards: every parameter
/// change, role approval, slash and role grant waits `minDelay` in public view.
/// Proposers (a multisig on a real chain) schedule and cancel; executors execute.
contract PSPTimelock is TimelockController {
    /// @param minDelay Seconds between scheduling and execution.
    /// @param proposers Accounts that may schedule (and cancel) operations.
    /// @param executors Accounts that may execute ready operations (address(0): anyone).
    constructor(uint256 minDelay, address[] memory proposers, address[] memory executors)
        TimelockController(minDelay, proposers, executors, address(0))
    {}
}
