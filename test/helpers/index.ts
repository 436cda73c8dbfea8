/** Helpers the tests share instead of copying: error kinds and free ports. */
export { kindOf, kindOfAsync } from "./errors.js";
export { freePort } from "./net.js";
