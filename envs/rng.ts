/**
 * Seeded pseudo-random numbers for environments and spaces.
 *
 * xoshiro128** seeded through splitmix32: fast on 32-bit integer math (V8 keeps it in Smis/int32), 2^128 period,
 * and the same seed gives the same stream on every platform, which is what seeding determinism needs.
 *
 * @module
 */

/** Returns a seed from the system's entropy source, for generators created without one. */
export function entropySeed(): number {
  return crypto.getRandomValues(new Uint32Array(1))[0];
}

/**
 * A seeded generator (xoshiro128**). Same seed → same sequence.
 *
 * @example
 * ```ts
 * import { Rng } from "./rng.ts";
 * const rng = new Rng(42);
 * const u = rng.random(); // in [0, 1)
 * const k = rng.integers(0, 6); // in [0, 6)
 * console.assert(u >= 0 && u < 1 && k >= 0 && k < 6);
 * ```
 */
export class Rng {
  #s0 = 0;
  #s1 = 0;
  #s2 = 0;
  #s3 = 0;
  #spareNormal = NaN;

  /** Creates a generator; without a seed it draws one from the system's entropy. */
  constructor(seed: number = entropySeed()) {
    if (!Number.isFinite(seed)) throw new TypeError(`Rng: seed must be a finite number, got ${seed}`);
    // splitmix32 expands one 32-bit seed (plus the high bits of larger seeds) into the 128-bit state.
    let x = (seed >>> 0) ^ Math.floor(seed / 4294967296);
    const next = () => {
      x = (x + 0x9e3779b9) | 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.#s0 = next();
    this.#s1 = next();
    this.#s2 = next();
    this.#s3 = next();
  }

  /** Next raw 32-bit unsigned integer. */
  nextUint32(): number {
    const s0 = this.#s0, s1 = this.#s1, s2 = this.#s2, s3 = this.#s3;
    const r = Math.imul(rotl(Math.imul(s1, 5), 7), 9);
    const t = s1 << 9;
    this.#s2 = s2 ^ s0;
    this.#s3 = s3 ^ s1;
    this.#s1 = s1 ^ this.#s2;
    this.#s0 = s0 ^ this.#s3;
    this.#s2 ^= t;
    this.#s3 = rotl(this.#s3, 11);
    return r >>> 0;
  }

  /** Uniform float in [0, 1) with 53 bits of precision. */
  random(): number {
    const hi = this.nextUint32() >>> 5, lo = this.nextUint32() >>> 6;
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Uniform float in [low, high). */
  uniform(low: number, high: number): number {
    return low + (high - low) * this.random();
  }

  /** Uniform integer in [low, high) (high exclusive, like NumPy's `integers`). */
  integers(low: number, high: number): number {
    const span = high - low;
    if (!(span >= 1)) throw new RangeError(`Rng.integers: empty range [${low}, ${high})`);
    if (span <= 4294967296) {
      // Lemire-style rejection keeps small ranges unbiased.
      const limit = 4294967296 - (4294967296 % span);
      let x = this.nextUint32();
      while (x >= limit) x = this.nextUint32();
      return low + (x % span);
    }
    return low + Math.floor(this.random() * span);
  }

  /** Standard normal sample (Marsaglia polar method; caches the spare value). */
  normal(mean = 0, std = 1): number {
    if (!Number.isNaN(this.#spareNormal)) {
      const z = this.#spareNormal;
      this.#spareNormal = NaN;
      return mean + std * z;
    }
    let u: number, v: number, s: number;
    do {
      u = this.random() * 2 - 1;
      v = this.random() * 2 - 1;
      s = u * u + v * v;
    } while (s >= 1 || s === 0);
    const f = Math.sqrt((-2 * Math.log(s)) / s);
    this.#spareNormal = v * f;
    return mean + std * u * f;
  }

  /** A new generator whose seed is drawn from this one (for child envs and spaces). */
  spawn(): Rng {
    return new Rng(this.nextUint32());
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
