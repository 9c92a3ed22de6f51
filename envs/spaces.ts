/**
 * Gymnasium's spaces in TypeScript: `Discrete`, `Box`, `MultiDiscrete`, `Dict`.
 *
 * Array-valued spaces use typed arrays (`Float32Array` for float32 boxes, `Uint8Array` for uint8 boxes, `Int32Array`
 * for multi-discrete), laid out row-major in `shape`.
 *
 * @module
 */

import { Rng } from "./rng.ts";

/** Element types of array spaces. */
export type DType = "uint8" | "float32" | "int32";

/** The typed array for each dtype. */
export type TypedArrayOf<D extends DType> = D extends "uint8" ? Uint8Array
  : D extends "int32" ? Int32Array
  : Float32Array;

/** Base of all spaces: a seeded `sample()`, a `contains()` check, a shape and a dtype. */
export abstract class Space<T> {
  /** Shape of one element (`[]` for scalars). */
  abstract readonly shape: readonly number[];
  /** Element type. */
  abstract readonly dtype: DType;
  /** Generator used by `sample()`; reseed it with `seed()`. */
  protected rng: Rng = new Rng();

  /** Reseeds `sample()`. */
  seed(seed?: number): void {
    this.rng = new Rng(seed);
  }

  /** A random element of the space. */
  abstract sample(): T;

  /** Whether `x` is an element of the space. */
  abstract contains(x: unknown): x is T;

  /** A short description such as `Discrete(2)`, used in error messages. */
  abstract toString(): string;

  /** Number of scalars in one element. */
  get size(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }

  /**
   * Throws a `RangeError` naming the space and the value when `x` is not in the space.
   * @param what what `x` is, for the message (e.g. "action").
   */
  assertContains(x: unknown, what = "value"): asserts x is T {
    if (!this.contains(x)) throw new RangeError(`${what} ${describeValue(x)} is not in ${this}`);
  }
}

/**
 * Integers `{start, ..., start + n - 1}`.
 *
 * @example
 * ```ts
 * import { Discrete } from "./spaces.ts";
 * const space = new Discrete(2);
 * space.seed(0);
 * console.assert(space.contains(space.sample()));
 * ```
 */
export class Discrete extends Space<number> {
  readonly shape: readonly number[] = [];
  readonly dtype = "int32" as const;
  /** Number of elements. */
  readonly n: number;
  /** Smallest element. */
  readonly start: number;

  constructor(n: number, options: { start?: number } = {}) {
    super();
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`Discrete: n must be a positive integer, got ${n}`);
    this.n = n;
    this.start = options.start ?? 0;
  }

  sample(): number {
    return this.start + this.rng.integers(0, this.n);
  }

  contains(x: unknown): x is number {
    return typeof x === "number" && Number.isInteger(x) && x >= this.start && x < this.start + this.n;
  }

  toString(): string {
    return this.start === 0 ? `Discrete(${this.n})` : `Discrete(${this.n}, start=${this.start})`;
  }
}

/**
 * A box in R^n (float32) or a uint8 image space, with per-element bounds.
 *
 * @example
 * ```ts
 * import { Box } from "./spaces.ts";
 * const pixels = new Box(0, 255, { shape: [84, 84], dtype: "uint8" });
 * const angles = new Box([-1, -1], [1, 1]);
 * console.assert(pixels.contains(pixels.sample()) && angles.shape[0] === 2);
 * ```
 */
export class Box<D extends "uint8" | "float32" = "uint8" | "float32"> extends Space<TypedArrayOf<D>> {
  readonly shape: readonly number[];
  readonly dtype: D;
  /** Lower bounds, one per element (may be -Infinity for float32). */
  readonly low: Float64Array;
  /** Upper bounds, one per element (may be Infinity for float32). */
  readonly high: Float64Array;

  constructor(
    low: number | ArrayLike<number>,
    high: number | ArrayLike<number>,
    options: { shape?: readonly number[]; dtype?: D } = {},
  ) {
    super();
    const shape = options.shape ??
      (typeof low !== "number" ? [low.length] : typeof high !== "number" ? [high.length] : undefined);
    if (!shape) throw new TypeError("Box: pass options.shape when low and high are both scalars");
    if (shape.some((d) => !Number.isInteger(d) || d < 0)) {
      throw new RangeError(`Box: shape must hold non-negative integers, got [${shape}]`);
    }
    this.shape = [...shape];
    this.dtype = (options.dtype ?? "float32") as D;
    const size = this.size;
    this.low = broadcastBound(low, size, "low");
    this.high = broadcastBound(high, size, "high");
    if (this.dtype === "float32") {
      // Bounds are stored as float32 values (as Gymnasium casts them), so samples clamp onto them exactly.
      for (let i = 0; i < size; i++) {
        this.low[i] = Math.fround(this.low[i]);
        this.high[i] = Math.fround(this.high[i]);
      }
    }
    for (let i = 0; i < size; i++) {
      if (!(this.low[i] <= this.high[i])) {
        throw new RangeError(`Box: low[${i}]=${this.low[i]} must not exceed high[${i}]=${this.high[i]}`);
      }
    }
  }

  /** Whether every dimension is bounded on both sides. */
  isBounded(): boolean {
    return this.low.every(Number.isFinite) && this.high.every(Number.isFinite);
  }

  sample(): TypedArrayOf<D> {
    const size = this.size, rng = this.rng;
    if (this.dtype === "uint8") {
      const out = new Uint8Array(size);
      for (let i = 0; i < size; i++) {
        const lo = Math.max(0, Math.ceil(this.low[i])), hi = Math.min(255, Math.floor(this.high[i]));
        out[i] = rng.integers(lo, hi + 1);
      }
      return out as TypedArrayOf<D>;
    }
    // Gymnasium's rule: uniform when bounded, exponential when half-bounded, normal when unbounded.
    const out = new Float32Array(size);
    for (let i = 0; i < size; i++) {
      const lo = this.low[i], hi = this.high[i];
      const bl = Number.isFinite(lo), bh = Number.isFinite(hi);
      if (bl && bh) out[i] = rng.uniform(lo, hi);
      else if (bl) out[i] = lo - Math.log(1 - rng.random());
      else if (bh) out[i] = hi + Math.log(1 - rng.random());
      else out[i] = rng.normal();
      // Rounding to float32 may step just past a bound; the bounds themselves are float32 values.
      if (out[i] > hi) out[i] = hi;
      if (out[i] < lo) out[i] = lo;
    }
    return out as TypedArrayOf<D>;
  }

  contains(x: unknown): x is TypedArrayOf<D> {
    const ok = this.dtype === "uint8" ? x instanceof Uint8Array : x instanceof Float32Array;
    if (!ok) return false;
    const a = x as Uint8Array | Float32Array;
    if (a.length !== this.size) return false;
    for (let i = 0; i < a.length; i++) {
      const v = a[i];
      if (!(v >= this.low[i] && v <= this.high[i])) return false;
    }
    return true;
  }

  toString(): string {
    const b = (arr: Float64Array) => (arr.every((v) => v === arr[0]) ? String(arr[0]) : "[...]");
    return `Box(${b(this.low)}, ${b(this.high)}, [${this.shape}], ${this.dtype})`;
  }
}

/**
 * A vector of independent discrete choices, element `i` in `[0, nvec[i])`.
 *
 * @example
 * ```ts
 * import { MultiDiscrete } from "./spaces.ts";
 * const buttons = new MultiDiscrete([3, 2]);
 * console.assert(buttons.contains(Int32Array.of(2, 1)));
 * ```
 */
export class MultiDiscrete extends Space<Int32Array> {
  readonly shape: readonly number[];
  readonly dtype = "int32" as const;
  /** Number of choices per element. */
  readonly nvec: Int32Array;

  constructor(nvec: ArrayLike<number>) {
    super();
    this.nvec = Int32Array.from(nvec);
    if (this.nvec.length === 0 || this.nvec.some((n) => n < 1)) {
      throw new RangeError(`MultiDiscrete: nvec must hold positive integers, got [${Array.from(nvec)}]`);
    }
    this.shape = [this.nvec.length];
  }

  sample(): Int32Array {
    return this.nvec.map((n) => this.rng.integers(0, n));
  }

  contains(x: unknown): x is Int32Array {
    if (!(x instanceof Int32Array) || x.length !== this.nvec.length) return false;
    return x.every((v, i) => v >= 0 && v < this.nvec[i]);
  }

  toString(): string {
    return `MultiDiscrete([${Array.from(this.nvec)}])`;
  }
}

/** The element type of a `Dict` space over `S`. */
export type DictValue<S extends Record<string, Space<unknown>>> = {
  [K in keyof S]: S[K] extends Space<infer T> ? T : never;
};

/**
 * A dictionary of named sub-spaces (e.g. screen + game variables).
 *
 * @example
 * ```ts
 * import { Box, Dict, Discrete } from "./spaces.ts";
 * const space = new Dict({ screen: new Box(0, 255, { shape: [2, 2], dtype: "uint8" }), key: new Discrete(3) });
 * console.assert(space.contains(space.sample()));
 * ```
 */
export class Dict<S extends Record<string, Space<unknown>> = Record<string, Space<unknown>>>
  extends Space<DictValue<S>> {
  readonly shape: readonly number[] = [];
  readonly dtype = "float32" as const;
  /** The sub-spaces by name. */
  readonly spaces: S;

  constructor(spaces: S) {
    super();
    this.spaces = spaces;
  }

  override seed(seed?: number): void {
    const root = new Rng(seed);
    for (const space of Object.values(this.spaces)) space.seed(root.nextUint32());
  }

  override get size(): number {
    return Object.values(this.spaces).reduce((a, s) => a + s.size, 0);
  }

  sample(): DictValue<S> {
    const out: Record<string, unknown> = {};
    for (const [k, s] of Object.entries(this.spaces)) out[k] = s.sample();
    return out as DictValue<S>;
  }

  contains(x: unknown): x is DictValue<S> {
    if (typeof x !== "object" || x === null) return false;
    const rec = x as Record<string, unknown>;
    const keys = Object.keys(this.spaces);
    return Object.keys(rec).length === keys.length && keys.every((k) => this.spaces[k].contains(rec[k]));
  }

  toString(): string {
    return `Dict(${Object.entries(this.spaces).map(([k, s]) => `${k}: ${s}`).join(", ")})`;
  }
}

function broadcastBound(v: number | ArrayLike<number>, size: number, name: string): Float64Array {
  if (typeof v === "number") return new Float64Array(size).fill(v);
  if (v.length !== size) throw new RangeError(`Box: ${name} has ${v.length} elements, shape needs ${size}`);
  return Float64Array.from(v);
}

function describeValue(x: unknown): string {
  if (ArrayBuffer.isView(x) && !(x instanceof DataView)) {
    const a = Array.from(x as unknown as ArrayLike<number>);
    return `${x.constructor.name}[${a.length > 8 ? a.slice(0, 8).join(", ") + ", ..." : a.join(", ")}]`;
  }
  try {
    return JSON.stringify(x) ?? String(x);
  } catch {
    return String(x);
  }
}
