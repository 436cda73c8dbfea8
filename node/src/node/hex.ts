/** Hex form of bytes (lower case), for node info printed and parsed by the CLI: base's hexOf under the node process's name. */
export { hexOf as hex } from "../base/hex.js";
