/**
 * Flag checks shared by the example scripts: a bad flag ends the process with exit code 2 and a message naming it.
 *
 * @module
 */

/** Exits with code 2 and a message that names the bad flag. */
export function fail(message: string, usage = "Run with --help for all options."): never {
  console.error(`error: ${message}\n\n${usage}`);
  Deno.exit(2);
}

/** Parses an integer flag `>= min`; undefined when the flag is absent. */
export function intFlag(name: string, value: string | undefined, min: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === "" || !Number.isSafeInteger(n) || n < min) {
    fail(`--${name} must be an integer >= ${min}, got '${value}'`);
  }
  return n;
}

/** Checks that a flag's value is one of `valid`. */
export function oneOf<T extends string>(name: string, value: string, valid: readonly T[]): T {
  if (!(valid as readonly string[]).includes(value)) {
    fail(`--${name} must be one of ${valid.join(", ")}, got '${value}'`);
  }
  return value as T;
}

/**
 * The flags the Doom and Atari scripts share, Sample Factory's names (`--enjoy`, `--max-num-episodes`, ...): spread
 * into their `parseArgs` options.
 */
export const PLAY_FLAGS = {
  backend: { type: "string", default: "cpu" },
  "no-video": { type: "boolean", default: false },
  enjoy: { type: "boolean", default: false },
  eval: { type: "boolean", default: false },
  checkpoint: { type: "string" },
  "max-num-episodes": { type: "string", default: "10" },
  "save-video": { type: "boolean", default: false },
  "no-render": { type: "boolean", default: false },
  help: { type: "boolean", short: "h", default: false },
} as const;
