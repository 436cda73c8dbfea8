/**
 * What the fuzz properties share: a target type both runners understand, the
 * "typed error or nothing" rule, and a byte mutator.
 *
 * Each property module (wire.ts, crypto.ts, link.ts) is imported by a vitest
 * file that runs every target a few hundred times and by scripts/fuzz-*.ts,
 * which runs the same targets for many iterations. A property is written once.
 */
import fc from "fast-check";

export interface FuzzTarget {
  name: string;
  /** Runs relative to the runner's count (expensive targets get less); default 1. */
  weight?: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  property: () => fc.IRawProperty<any, any>;
}

/** Defines a target; `property` is built lazily so importing a module costs nothing. */
export const target = (name: string, property: FuzzTarget["property"], weight?: number): FuzzTarget => ({ name, property, ...(weight === undefined ? {} : { weight }) });

/** Runs `fn`; returns the typed error's kind, undefined when it returned; re-throws anything not an instance of one of `types`. */
export function typedOnly(types: readonly (abstract new (...args: never[]) => Error)[], fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    if (types.some((t) => err instanceof t)) return (err as { kind?: string }).kind ?? "typed";
    throw err;
  }
}

export async function typedOnlyAsync(types: readonly (abstract new (...args: never[]) => Error)[], fn: () => Promise<unknown>): Promise<string | undefined> {
  try {
    await fn();
    return undefined;
  } catch (err) {
    if (types.some((t) => err instanceof t)) return (err as { kind?: string }).kind ?? "typed";
    throw err;
  }
}

/** A failed expectation inside a property (the properties run outside vitest too). */
export function check(condition: boolean, message: string): void {
  if (!condition) throw new Error(message);
}

/** Flips, inserts and deletes a few bytes of `base`. */
export const mutate = (base: Uint8Array) =>
  fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }).map((edits) => {
    const bytes = Array.from(base);
    for (const [where, op, value] of edits) {
      const i = bytes.length === 0 ? 0 : where % bytes.length;
      if (op === 0 && bytes.length > 0) bytes[i] = (bytes[i] as number) ^ (value || 1);
      else if (op === 1) bytes.splice(i, 0, value);
      else bytes.splice(i, 1);
    }
    return Uint8Array.from(bytes);
  });

/** Random bytes, or mutations of a valid sample. */
export const bytesOr = (sample: Uint8Array, maxLength: number) => fc.oneof(fc.uint8Array({ maxLength }), mutate(sample));

/** Runs targets with `runs` cases each (scaled by weight); returns the names that failed, printing each result. */
export async function runTargets(targets: readonly FuzzTarget[], runs: number, seed: number | undefined, log: (line: string) => void = console.log): Promise<string[]> {
  const failed: string[] = [];
  for (const t of targets) {
    const numRuns = Math.max(1, Math.floor(runs * (t.weight ?? 1)));
    const started = performance.now();
    try {
      await fc.assert(t.property(), { numRuns, ...(seed === undefined ? {} : { seed }) });
      log(`ok   ${t.name}: ${numRuns} cases in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    } catch (err) {
      failed.push(t.name);
      log(`FAIL ${t.name}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return failed;
}
