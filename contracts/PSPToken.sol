// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";

/// @title PSPToken
/// @notice The PeerStream token ("PSP", 18 decimals): staking collateral for nodes,
/// subscription payments and bandwidth rewards. Owns: balances and ERC-2612 permits.
/// Trusts: nothing; the whole fixed supply is minted once to `initialHolder` and there
/// is no owner, no mint and no pause, so other contracts can treat it as a plain ERC20.
contract PSPToken is ERC20, ERC20Permit {
    /// @notice The initial holder must not be the zero address.
    error ZeroInitialHolder();

    /// @param initialHolder Receives the whole supply (the deployer's treasury on a devnet).
    /// @param initialSupply Total supply in base units (1 PSP = 1e18).
    constructor(address initialHolder, uint256 initialSupply)
        ERC20("PeerStream Token", "PSP")
        ERC20Permit("PeerStream Token")
    {
        if (initialHolder == address(0)) revert ZeroInitialHolder();
        _mint(initialHolder, initialSupply);
    }
}
