/**
 * Small statistics shared by the benchmark scripts.
 *
 * @module
 */

/**
 * The median (the mean of the two middle values for an even count).
 *
 * @example
 * ```ts
 * import { median } from "./_stats.ts";
 * median([3, 1, 2]); // 2
 * median([4, 1, 3, 2]); // 2.5
 * ```
 */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}
