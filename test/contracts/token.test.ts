/** PSPToken: metadata, fixed supply to the initial holder, ERC-2612 permits. */
import { describe, expect, it } from "vitest";
import { network } from "hardhat";
import { parseEther, zeroAddress } from "viem";
import { permitSignatureParts, permitTypedData } from "../../node/src/chain/permit.js";

const SUPPLY = parseEther("1000000");

describe("PSPToken", () => {
  it("mints the whole fixed supply to the initial holder", async () => {
    const { viem } = await network.connect();
    const [deployer, holder] = await viem.getWalletClients();
    const token = await viem.deployContract("PSPToken", [holder!.account.address, SUPPLY]);
    expect(await token.read.name()).toBe("PeerStream Token");
    expect(await token.read.symbol()).toBe("PSP");
    expect(await token.read.decimals()).toBe(18);
    expect(await token.read.totalSupply()).toBe(SUPPLY);
    expect(await token.read.balanceOf([holder!.account.address])).toBe(SUPPLY);
    expect(await token.read.balanceOf([deployer!.account.address])).toBe(0n);
  });

  it("rejects a zero initial holder", async () => {
    const { viem } = await network.connect();
    await expect(viem.deployContract("PSPToken", [zeroAddress, SUPPLY])).rejects.toThrow(/ZeroInitialHolder/);
  });

  it("accepts a permit and rejects an expired one", async () => {
    const { viem, networkHelpers } = await network.connect();
    const [owner, spender] = await viem.getWalletClients();
    const token = await viem.deployContract("PSPToken", [owner!.account.address, SUPPLY]);
    const chainId = await (await viem.getPublicClient()).getChainId();
    const sign = async (deadline: bigint) =>
      permitSignatureParts(
        await owner!.signTypedData({
          account: owner!.account,
          ...permitTypedData({ tokenName: "PeerStream Token", token: token.address, chainId, owner: owner!.account.address, spender: spender!.account.address, value: 5n, nonce: 0n, deadline }),
        }),
      );
    const now = BigInt(await networkHelpers.time.latest());
    const expired = await sign(now - 1n);
    await viem.assertions.revertWithCustomError(
      token.write.permit([owner!.account.address, spender!.account.address, 5n, now - 1n, expired.v, expired.r, expired.s]),
      token,
      "ERC2612ExpiredSignature",
    );
    const ok = await sign(now + 600n);
    await token.write.permit([owner!.account.address, spender!.account.address, 5n, now + 600n, ok.v, ok.r, ok.s]);
    expect(await token.read.allowance([owner!.account.address, spender!.account.address])).toBe(5n);
    expect(await token.read.nonces([owner!.account.address])).toBe(1n);
  });
});
