/** The oracle service's typed error: OracleError, shared with the client side (node/src/stream/oracle-errors.ts). */
export { OracleError, ORACLE_CLIENT_SIDE_KINDS, type OracleErrorKind } from "../node/src/stream/oracle-errors.js";
