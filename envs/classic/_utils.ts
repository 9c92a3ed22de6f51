/**
 * Shared helpers of the classic-control envs.
 *
 * @module
 */

/** The message every classic env throws when stepped before `reset()`. */
export function notResetError(name: string): Error {
  return new Error(`${name}: call reset() before step()`);
}

/**
 * Reads `options.state` (an exact initial state, for fixtures and tests) when given: `length` finite numbers.
 * Returns undefined when absent.
 */
export function stateOption(
  options: Record<string, unknown> | undefined,
  length: number,
  name: string,
): number[] | undefined {
  const state = options?.state;
  if (state === undefined) return undefined;
  const arr = ArrayBuffer.isView(state) ? Array.from(state as unknown as ArrayLike<number>) : state;
  if (!Array.isArray(arr) || arr.length !== length || !arr.every((v) => typeof v === "number" && Number.isFinite(v))) {
    throw new TypeError(`${name}: options.state must hold ${length} finite numbers, got ${JSON.stringify(state)}`);
  }
  return arr as number[];
}

/** Gymnasium's `maybe_parse_reset_bounds`: `options.low` and `options.high` override the default reset range. */
export function resetBounds(
  options: Record<string, unknown> | undefined,
  defaultLow: number,
  defaultHigh: number,
  name: string,
): [number, number] {
  if (!options) return [defaultLow, defaultHigh];
  const low = options.low ?? defaultLow, high = options.high ?? defaultHigh;
  if (typeof low !== "number" || typeof high !== "number" || !(low <= high)) {
    throw new RangeError(`${name}: reset options need numbers low <= high, got low=${low}, high=${high}`);
  }
  return [low, high];
}
