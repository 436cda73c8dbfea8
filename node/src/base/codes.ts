/**
 * Tables of names to wire codes (reason bytes, command bytes, service ids)
 * and their reverse lookup, generated from the one table so the two never
 * drift apart.
 *
 *   export const CloseReason = { DONE: 0, PROTOCOL_VIOLATION: 1, ... } as const;
 *   const closeReasons = codeLookup(CloseReason);
 *   closeReasons.nameOf(1)  // "PROTOCOL_VIOLATION"
 *   closeReasons.nameOf(200) // undefined: a code from a peer this version does not know
 *   closeReasons.codeOf("IDLE") // 8
 */
import { BaseError } from "./errors.js";

/** A table of names to integer codes, declared `as const`. */
export type CodeTable = Readonly<Record<string, number>>;
/** A name of the table. */
export type CodeName<T extends CodeTable> = Extract<keyof T, string>;
/** A code the table lists. */
export type Code<T extends CodeTable> = T[keyof T];

export interface CodeLookup<T extends CodeTable> {
  /** The name of `code`, or undefined for a code the table does not list. */
  nameOf(code: number): CodeName<T> | undefined;
  /** True when the table lists `code`. */
  isCode(code: number): code is Code<T>;
  /** The code of `name`, or undefined for a name the table does not list (any string may be asked). */
  codeOf(name: string): Code<T> | undefined;
}

/** The reverse lookup of `table`; two names with one code are a BaseError "bad-argument". */
export function codeLookup<const T extends CodeTable>(table: T): CodeLookup<T> {
  const names = new Map<number, CodeName<T>>();
  for (const [name, code] of Object.entries(table)) {
    const taken = names.get(code);
    if (taken !== undefined) throw new BaseError("bad-argument", `codes ${taken} and ${name} are both ${code}: a code table needs one name per code`);
    names.set(code, name as CodeName<T>);
  }
  return {
    nameOf: (code) => names.get(code),
    isCode: (code): code is Code<T> => names.has(code),
    codeOf: (name) => (Object.hasOwn(table, name) ? (table[name] as Code<T>) : undefined),
  };
}
