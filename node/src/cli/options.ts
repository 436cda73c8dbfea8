/**
 * Option parsers shared by the psp commands: each returns a commander
 * argument parser that refuses bad input with an InvalidArgumentError naming
 * the option and the accepted range.
 */
import { InvalidArgumentError } from "commander";

/** An integer option in min..max (inclusive). */
export function integerOption(name: string, min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`${name} must be an integer in ${min}..${max}`);
    return n;
  };
}
