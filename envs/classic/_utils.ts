/**
 * Shared helpers of the classic-control envs.
 *
 * @module
 */

/**
 * The error every classic env throws when stepped before `reset()`.
 *
 * @example
 * ```ts
 * import { notResetError } from "./_utils.ts";
 * console.assert(notResetError("CartPole").message === "CartPole: call reset() before step()");
 * ```
 */
export function notResetError(name: string): Error {
  return new Error(`${name}: call reset() before step()`);
}

/**
 * Reads `options.state` (an exact initial state, for fixtures and tests) when given: `length` finite numbers.
 * Returns undefined when absent; throws a TypeError when malformed.
 *
 * @example
 * ```ts
 * import { stateOption } from "./_utils.ts";
 * console.assert(stateOption({ state: [0, 1] }, 2, "MountainCar")?.[1] === 1);
 * console.assert(stateOption(undefined, 2, "MountainCar") === undefined);
 * ```
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

/**
 * Gymnasium's `maybe_parse_reset_bounds`: `options.low` and `options.high` override the default reset range.
 *
 * @example
 * ```ts
 * import { resetBounds } from "./_utils.ts";
 * const [low, high] = resetBounds({ high: 0.2 }, -0.05, 0.05, "CartPole");
 * console.assert(low === -0.05 && high === 0.2);
 * ```
 */
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
