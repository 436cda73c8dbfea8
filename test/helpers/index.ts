/** Helpers the tests share instead of copying: error kinds, free ports and polling. */
export { kindOf, kindOfAsync } from "./errors.js";
export { freePort } from "./net.js";
export { waitFor, waiter } from "./wait.js";
export type { Poll, WaitFor } from "./wait.js";
