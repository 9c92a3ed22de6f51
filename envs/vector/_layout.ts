/**
 * Shared by both backends and by the worker script: which spaces vector envs support, how a space crosses a
 * postMessage, and the layout of the one buffer (plain or shared) that holds every per-step array.
 *
 * @module
 */

import { Box, Discrete, MultiDiscrete, type Space } from "../spaces.ts";

/** Observation arrays of vector envs: the single observation space's dtype. */
export type ObsArray = Float32Array | Uint8Array;
/** Action arrays of vector envs: `Int32Array` for Discrete/MultiDiscrete, `Float32Array` for Box. */
export type ActArray = Int32Array | Float32Array;

/** A space in a form that survives structured cloning (spaces are classes, so they do not). */
export type SpaceDescription =
  | { type: "Discrete"; n: number; start: number }
  | { type: "MultiDiscrete"; nvec: number[] }
  | { type: "Box"; low: number[]; high: number[]; shape: number[]; dtype: "uint8" | "float32" };

/** Sizes and dtypes that fix the buffer layout; derived from the single spaces. */
export interface VectorShape {
  numEnvs: number;
  obsSize: number;
  obsDtype: "uint8" | "float32";
  actSize: number;
  actDtype: "int32" | "float32";
  /** How each env receives its action: a number, or a per-env view of the action buffer. */
  actKind: "discrete" | "array";
}

/** Byte offsets of each array inside the vector env's buffer. */
export interface BufferLayout {
  observations: number;
  finalObservation: number;
  actions: number;
  rewards: number;
  episodeReturn: number;
  episodeLength: number;
  terminated: number;
  truncated: number;
  byteLength: number;
}

/**
 * Typed views of the vector env's one buffer; what `reset`/`step` return are these same objects, overwritten by the
 * next call. Rows are `numEnvs` long in env order; observations are row-major, `obsSize` values per env.
 *
 * @example
 * ```ts
 * import "../classic/mod.ts";
 * import { SyncVectorEnv } from "./mod.ts";
 *
 * using envs = new SyncVectorEnv("CartPole-v1", { numEnvs: 2 });
 * envs.resetSync({ seed: 0 });
 * const { actions, observations } = envs.buffers;
 * actions.set([1, 0]); // write in place, then send() without arguments
 * const [obs] = envs.stepSync();
 * console.assert(obs === observations && observations.length === 2 * 4);
 * const angleOfEnv1 = observations[1 * 4 + 2]; // row 1, element 2
 * console.assert(Number.isFinite(angleOfEnv1));
 * ```
 */
export interface VectorBuffers {
  /** `numEnvs x obsSize`, row-major: the observation each env is in now (first of a new episode after autoreset). */
  observations: ObsArray;
  /** `numEnvs x obsSize`: row `i` holds the last observation of env `i`'s episode, written only when it just ended. */
  finalObservation: ObsArray;
  /** `numEnvs x actSize`: the actions of the step in flight. */
  actions: ActArray;
  /** Reward of the last step, per env. */
  rewards: Float32Array;
  /** Undiscounted return of the episode that just ended, per env (valid where terminated or truncated). */
  episodeReturn: Float32Array;
  /** Length in steps of the episode that just ended, per env (valid where terminated or truncated). */
  episodeLength: Int32Array;
  /** 1 where the episode reached a terminal state on the last step. */
  terminated: Uint8Array;
  /** 1 where the episode was cut short (time limit) on the last step. */
  truncated: Uint8Array;
}

/** Serializes a space for postMessage. Throws a `TypeError` for spaces vector envs do not support. */
export function describeSpace(space: Space<unknown>, what: string): SpaceDescription {
  if (space instanceof Discrete) return { type: "Discrete", n: space.n, start: space.start };
  if (space instanceof MultiDiscrete) return { type: "MultiDiscrete", nvec: Array.from(space.nvec) };
  if (space instanceof Box) {
    return {
      type: "Box",
      low: Array.from(space.low),
      high: Array.from(space.high),
      shape: [...space.shape],
      dtype: space.dtype,
    };
  }
  throw new TypeError(
    `vector env: ${what} space ${space} is not supported (use Box observations and Discrete, MultiDiscrete or ` +
      `float32 Box actions; flatten Dict observations with a wrapper)`,
  );
}

/** Rebuilds a space from `describeSpace`'s output. */
export function spaceFromDescription(d: SpaceDescription): Space<unknown> {
  switch (d.type) {
    case "Discrete":
      return new Discrete(d.n, { start: d.start });
    case "MultiDiscrete":
      return new MultiDiscrete(d.nvec);
    case "Box":
      return new Box(d.low, d.high, { shape: d.shape, dtype: d.dtype });
  }
}

/** Whether two descriptions denote the same space. */
export function sameSpace(a: SpaceDescription, b: SpaceDescription): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Checks the single spaces and derives the buffer shapes. */
export function vectorShape(numEnvs: number, obsSpace: Space<unknown>, actSpace: Space<unknown>): VectorShape {
  if (!Number.isInteger(numEnvs) || numEnvs < 1) {
    throw new RangeError(`vector env: numEnvs must be a positive integer, got ${numEnvs}`);
  }
  if (!(obsSpace instanceof Box)) describeSpace(obsSpace, "observation"); // throws the explanatory TypeError
  if (!(obsSpace instanceof Box)) throw new TypeError(`vector env: observation space ${obsSpace} must be a Box`);
  if (actSpace instanceof Discrete) {
    return {
      numEnvs,
      obsSize: obsSpace.size,
      obsDtype: obsSpace.dtype,
      actSize: 1,
      actDtype: "int32",
      actKind: "discrete",
    };
  }
  if (actSpace instanceof MultiDiscrete) {
    return {
      numEnvs,
      obsSize: obsSpace.size,
      obsDtype: obsSpace.dtype,
      actSize: actSpace.size,
      actDtype: "int32",
      actKind: "array",
    };
  }
  if (actSpace instanceof Box && actSpace.dtype === "float32") {
    return {
      numEnvs,
      obsSize: obsSpace.size,
      obsDtype: obsSpace.dtype,
      actSize: actSpace.size,
      actDtype: "float32",
      actKind: "array",
    };
  }
  describeSpace(actSpace, "action");
  throw new TypeError(`vector env: action space ${actSpace} is not supported (uint8 Box actions are not)`);
}

/** Byte offsets of every array; each array starts on a 64-byte boundary so blocks of different threads rarely share a cache line. */
export function bufferLayout(shape: VectorShape): BufferLayout {
  const obsBytes = shape.numEnvs * shape.obsSize * (shape.obsDtype === "uint8" ? 1 : 4);
  let offset = 0;
  const take = (bytes: number) => {
    const at = offset;
    offset += Math.ceil(bytes / 64) * 64;
    return at;
  };
  const n = shape.numEnvs;
  const observations = take(obsBytes);
  const finalObservation = take(obsBytes);
  const actions = take(n * shape.actSize * 4);
  const rewards = take(n * 4);
  const episodeReturn = take(n * 4);
  const episodeLength = take(n * 4);
  const terminated = take(n);
  const truncated = take(n);
  return {
    observations,
    finalObservation,
    actions,
    rewards,
    episodeReturn,
    episodeLength,
    terminated,
    truncated,
    byteLength: Math.max(offset, 64),
  };
}

/** Views of `buffer` following `bufferLayout(shape)`. */
export function viewBuffers(buffer: ArrayBufferLike, shape: VectorShape): VectorBuffers {
  const l = bufferLayout(shape);
  const n = shape.numEnvs, obsLen = n * shape.obsSize;
  const obs = (at: number): ObsArray =>
    shape.obsDtype === "uint8" ? new Uint8Array(buffer, at, obsLen) : new Float32Array(buffer, at, obsLen);
  const actLen = n * shape.actSize;
  return {
    observations: obs(l.observations),
    finalObservation: obs(l.finalObservation),
    actions: shape.actDtype === "int32"
      ? new Int32Array(buffer, l.actions, actLen)
      : new Float32Array(buffer, l.actions, actLen),
    rewards: new Float32Array(buffer, l.rewards, n),
    episodeReturn: new Float32Array(buffer, l.episodeReturn, n),
    episodeLength: new Int32Array(buffer, l.episodeLength, n),
    terminated: new Uint8Array(buffer, l.terminated, n),
    truncated: new Uint8Array(buffer, l.truncated, n),
  };
}

/** Allocates the buffer (a `SharedArrayBuffer` when `shared`) and returns it with its views. */
export function allocateBuffers(
  shape: VectorShape,
  shared: boolean,
): { buffer: ArrayBuffer | SharedArrayBuffer; views: VectorBuffers } {
  const bytes = bufferLayout(shape).byteLength;
  const buffer = shared ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes);
  return { buffer, views: viewBuffers(buffer, shape) };
}

/**
 * Gymnasium's `batch_space`: `Discrete(n)` → `MultiDiscrete([n, ..., n])`; `Box` of shape `s` → `Box` of shape
 * `[numEnvs, ...s]`; `MultiDiscrete(nvec)` → `MultiDiscrete` of the `numEnvs` copies of `nvec` concatenated (our
 * MultiDiscrete is one-dimensional).
 *
 * @example
 * ```ts
 * import { Box, Discrete } from "../spaces.ts";
 * import { batchSpace } from "./mod.ts";
 *
 * console.assert(String(batchSpace(new Discrete(2), 3)) === "MultiDiscrete([2,2,2])");
 * console.assert(batchSpace(new Box(0, 255, { shape: [84, 84], dtype: "uint8" }), 8).shape.join() === "8,84,84");
 * ```
 */
export function batchSpace(space: Space<unknown>, numEnvs: number): Space<unknown> {
  if (space instanceof Discrete) {
    if (space.start !== 0) {
      throw new TypeError(`batchSpace: ${space} has start != 0, which MultiDiscrete cannot express`);
    }
    return new MultiDiscrete(new Array(numEnvs).fill(space.n));
  }
  if (space instanceof MultiDiscrete) {
    const nvec = new Int32Array(numEnvs * space.nvec.length);
    for (let i = 0; i < numEnvs; i++) nvec.set(space.nvec, i * space.nvec.length);
    return new MultiDiscrete(nvec);
  }
  if (space instanceof Box) {
    const size = space.size, low = new Float64Array(numEnvs * size), high = new Float64Array(numEnvs * size);
    for (let i = 0; i < numEnvs; i++) {
      low.set(space.low, i * size);
      high.set(space.high, i * size);
    }
    return new Box(low, high, { shape: [numEnvs, ...space.shape], dtype: space.dtype });
  }
  describeSpace(space, "single");
  throw new TypeError(`batchSpace: ${space} is not supported`);
}

/**
 * Validates `actions` (all envs, `numEnvs x actSize`) against the single action space and copies them into `out`.
 * Checks every value before copying, so a rejected batch leaves `out` untouched. Throws a `RangeError` naming the env,
 * the value and the space.
 */
export function copyActions(
  actions: ArrayLike<number>,
  out: ActArray,
  space: Space<unknown>,
  shape: VectorShape,
): void {
  if (actions.length !== out.length) {
    throw new RangeError(
      `send: expected ${out.length} actions (numEnvs ${shape.numEnvs} x ${shape.actSize} per env for ${space}), ` +
        `got ${actions.length}`,
    );
  }
  const bad = findBadAction(actions, space, shape);
  if (bad >= 0) {
    const k = shape.actSize, values = Array.from({ length: k }, (_, j) => actions[bad * k + j]);
    const value = shape.actKind === "discrete" ? String(values[0]) : `[${values.join(", ")}]`;
    throw new RangeError(`send: action ${value} for env ${bad} is not in ${space}`);
  }
  if (out !== actions) out.set(actions);
}

/** Index of the first env whose action is outside `space`, or -1. */
function findBadAction(actions: ArrayLike<number>, space: Space<unknown>, shape: VectorShape): number {
  const k = shape.actSize;
  if (space instanceof Discrete) {
    const lo = space.start, hi = space.start + space.n;
    for (let i = 0; i < actions.length; i++) {
      const a = actions[i];
      if (!(a >= lo && a < hi && Number.isInteger(a))) return i;
    }
  } else if (space instanceof MultiDiscrete) {
    const nvec = space.nvec;
    for (let i = 0; i < actions.length; i++) {
      const a = actions[i];
      if (!(a >= 0 && a < nvec[i % k] && Number.isInteger(a))) return Math.floor(i / k);
    }
  } else if (space instanceof Box) {
    const low = space.low, high = space.high;
    for (let i = 0; i < actions.length; i++) {
      const a = Math.fround(actions[i]); // compared as the float32 the env will see
      if (!(a >= low[i % k] && a <= high[i % k])) return Math.floor(i / k);
    }
  }
  return -1;
}
