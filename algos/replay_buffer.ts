/**
 * Experience replay for DQN: each observation is stored once, as one frame per step in a ring per env, and stacks of
 * `frameStack` frames are rebuilt at sample time (a 1M-step Atari buffer needs 84·84 bytes per step, not 4× that for
 * the stack and again for the next observation). Vector observations are the `frameStack = 1` case with float32
 * storage. Also: n-step returns computed at sample time, proportional prioritized replay on a sum-tree, and a memory
 * estimate checked before anything is allocated.
 *
 * Ring layout per env: every step writes the frame of the next observation into the next slot; a slot carries the
 * action, reward and end flags of the transition taken from it. When an episode ends, the frame of its final
 * observation gets its own slot (no transition is taken from it) and the first frame of the next episode follows,
 * marked as an episode start. A stack for slot `j` is the frames `j − k + 1 … j`, where frames before the episode
 * start repeat the start frame (what `FrameStack` with reset padding observed).
 *
 * @module
 */

import { type SafeTensor, safeTensor } from "../models/mod.ts";

/** Options of `ReplayBuffer`. */
export interface ReplayBufferOptions {
  /** Total transitions kept (split evenly over the envs' rings). */
  capacity: number;
  /** Number of envs adding in lockstep (one ring each). */
  numEnvs: number;
  /** Shape of one observation as the env gives it; with `frameStack > 1`, `[frameStack, ...frameShape]`. */
  obsShape: readonly number[];
  /** Storage type: `"uint8"` for frames, `"float32"` for vector observations. */
  dtype: "uint8" | "float32";
  /** Frames per observation (the leading axis of `obsShape`), rebuilt at sample time; 1 stores whole observations. */
  frameStack?: number;
  /** n of the n-step returns (1: one-step). */
  nStep?: number;
  /** Discount γ for n-step returns. */
  gamma?: number;
  /** Proportional prioritized replay exponent α (0: uniform sampling, no sum-tree). */
  prioritizedAlpha?: number;
  /** Refuse to allocate more than this many bytes (default: the memory the OS reports available). */
  maxBytes?: number;
}

/** A sampled minibatch, in buffers owned by the replay buffer (overwritten by the next `sample`). */
export interface ReplaySample {
  /** `[B, ...obsShape]` observations, as float32. */
  obs: Float32Array;
  /** `[B]` actions. */
  actions: Int32Array;
  /** `[B]` n-step discounted rewards `Σ γ^i r_{t+i}`. */
  rewards: Float32Array;
  /** `[B, ...obsShape]` observations n steps later (or the final observation of an episode that ended sooner). */
  nextObs: Float32Array;
  /** `[B]` bootstrap factor: `γ^m` (m steps taken), 0 when the episode terminated within them. */
  discounts: Float32Array;
  /** `[B]` importance-sampling weights (all 1 without prioritized replay). */
  weights: Float32Array;
  /** `[B]` buffer indices, for `updatePriorities`. */
  indices: Int32Array;
}

const HAS_TRANSITION = 1, TERMINATED = 2, TRUNCATED = 4, EPISODE_START = 8;
const MAX_CHUNK_BYTES = 1 << 30; // one typed array stays well inside engine limits

/** Bytes a replay buffer with these options allocates (frames, per-slot data, sum-tree), computed without allocating. */
export function replayMemoryBytes(options: ReplayBufferOptions): number {
  const { slotsPerEnv, frameSize } = layout(options);
  const slots = slotsPerEnv * options.numEnvs;
  const bytesPerValue = options.dtype === "uint8" ? 1 : 4;
  const tree = (options.prioritizedAlpha ?? 0) > 0 ? 2 * nextPow2(slots) * 8 : 0;
  return slots * (frameSize * bytesPerValue + 4 + 4 + 1) + tree;
}

function layout(options: ReplayBufferOptions): { slotsPerEnv: number; frameSize: number; k: number } {
  const k = options.frameStack ?? 1;
  if (!Number.isInteger(k) || k < 1) throw new RangeError(`ReplayBuffer: frameStack must be >= 1, got ${k}`);
  if (k > 1 && options.obsShape[0] !== k) {
    throw new RangeError(
      `ReplayBuffer: with frameStack ${k} the observation shape must start with ${k}, got [${options.obsShape}]`,
    );
  }
  const obsSize = options.obsShape.reduce((a, b) => a * b, 1);
  const perEnv = Math.ceil(options.capacity / options.numEnvs);
  // Room for the final-observation slots of episodes and the stack history before the oldest sampleable slot.
  const slotsPerEnv = perEnv + k + (options.nStep ?? 1) + 1;
  return { slotsPerEnv, frameSize: obsSize / k, k };
}

function nextPow2(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

function formatBytes(n: number): string {
  return n >= 2 ** 30 ? `${(n / 2 ** 30).toFixed(2)} GiB` : `${(n / 2 ** 20).toFixed(1)} MiB`;
}

function availableMemory(): number {
  try {
    return Deno.systemMemoryInfo().available;
  } catch {
    return Infinity; // no --allow-sys: only an explicit maxBytes limits the size
  }
}

/**
 * A sum-tree over `capacity` non-negative priorities: O(log n) updates and prefix-sum search, for proportional
 * prioritized replay.
 *
 * @example
 * ```ts
 * import { SumTree } from "./replay_buffer.ts";
 * const tree = new SumTree(4);
 * tree.set(0, 1);
 * tree.set(2, 3);
 * console.log(tree.total, tree.find(0.5), tree.find(1.5)); // 4 0 2
 * ```
 */
export class SumTree {
  readonly capacity: number;
  readonly #size: number;
  readonly #tree: Float64Array;

  constructor(capacity: number) {
    this.capacity = capacity;
    this.#size = nextPow2(Math.max(1, capacity));
    this.#tree = new Float64Array(2 * this.#size);
  }

  /** Sum of all priorities. */
  get total(): number {
    return this.#tree[1];
  }

  /** The whole tree (internal sums included, so a restored tree samples bit-identically); a view, not a copy. */
  get nodes(): Float64Array {
    return this.#tree;
  }

  /** Priority of leaf `i`. */
  get(i: number): number {
    return this.#tree[this.#size + i];
  }

  /** Set leaf `i` to `priority` (>= 0) and update the sums above it. */
  set(i: number, priority: number): void {
    if (!(priority >= 0)) throw new RangeError(`SumTree.set: priority must be >= 0, got ${priority}`);
    let node = this.#size + i;
    const delta = priority - this.#tree[node];
    if (delta === 0) return;
    for (; node >= 1; node >>= 1) this.#tree[node] += delta;
  }

  /** The leaf whose cumulative range contains `prefix` (0 <= prefix < total). */
  find(prefix: number): number {
    const t = this.#tree;
    let node = 1;
    while (node < this.#size) {
      const left = 2 * node;
      if (prefix < t[left] || t[left + 1] <= 0) node = left;
      else {
        prefix -= t[left];
        node = left + 1;
      }
    }
    return node - this.#size;
  }
}

/**
 * Replay buffer with frames stored once, n-step returns and optional proportional prioritized replay.
 *
 * @example
 * ```ts
 * import { ReplayBuffer } from "./replay_buffer.ts";
 * import { TrainRng } from "./_training.ts";
 * const rb = new ReplayBuffer({ capacity: 100, numEnvs: 1, obsShape: [2], dtype: "float32" });
 * rb.start(Float32Array.of(0, 0));
 * for (let t = 1; t <= 5; t++) {
 *   const obs = Float32Array.of(t, t);
 *   rb.add({ actions: [t % 2], rewards: [1], terminated: [0], truncated: [0], nextObs: obs, finalObs: obs });
 * }
 * const batch = rb.sample(2, new TrainRng(0));
 * console.assert(batch.nextObs[0] === batch.obs[0] + 1);
 * ```
 */
export class ReplayBuffer {
  readonly numEnvs: number;
  readonly obsShape: readonly number[];
  readonly frameStack: number;
  readonly frameSize: number;
  readonly obsSize: number;
  readonly slotsPerEnv: number;
  readonly nStep: number;
  readonly gamma: number;
  readonly alpha: number;
  /** Bytes allocated (as computed by `replayMemoryBytes`). */
  readonly bytes: number;
  readonly #chunks: (Uint8Array | Float32Array)[][]; // [env][chunk]
  readonly #slotsPerChunk: number;
  readonly #actions: Int32Array;
  readonly #rewards: Float32Array;
  readonly #flags: Uint8Array;
  readonly #head: Int32Array; // per env: the slot holding the current (latest) frame
  readonly #count: Int32Array; // per env: slots written, capped at slotsPerEnv
  readonly #tree: SumTree | null;
  #maxPriority = 1;
  #sample: ReplaySample | null = null;

  constructor(options: ReplayBufferOptions) {
    const { slotsPerEnv, frameSize, k } = layout(options);
    this.bytes = replayMemoryBytes(options);
    const limit = options.maxBytes ?? availableMemory();
    if (this.bytes > limit) {
      throw new RangeError(
        `ReplayBuffer: capacity ${options.capacity} of [${options.obsShape}] ${options.dtype} observations needs ` +
          `${formatBytes(this.bytes)} (${this.bytes} bytes), more than the ${
            options.maxBytes !== undefined ? "configured maxBytes" : "memory available"
          } (${formatBytes(limit)}); lower the capacity`,
      );
    }
    this.numEnvs = options.numEnvs;
    this.obsShape = [...options.obsShape];
    this.frameStack = k;
    this.frameSize = frameSize;
    this.obsSize = frameSize * k;
    this.slotsPerEnv = slotsPerEnv;
    this.nStep = options.nStep ?? 1;
    this.gamma = options.gamma ?? 0.99;
    this.alpha = options.prioritizedAlpha ?? 0;
    const bytesPerValue = options.dtype === "uint8" ? 1 : 4;
    this.#slotsPerChunk = Math.max(1, Math.floor(MAX_CHUNK_BYTES / (frameSize * bytesPerValue)));
    const Ctor = options.dtype === "uint8" ? Uint8Array : Float32Array;
    this.#chunks = Array.from({ length: this.numEnvs }, () => {
      const chunks = [];
      for (let s = 0; s < slotsPerEnv; s += this.#slotsPerChunk) {
        chunks.push(new Ctor(Math.min(this.#slotsPerChunk, slotsPerEnv - s) * frameSize));
      }
      return chunks;
    });
    const slots = slotsPerEnv * this.numEnvs;
    this.#actions = new Int32Array(slots);
    this.#rewards = new Float32Array(slots);
    this.#flags = new Uint8Array(slots);
    this.#head = new Int32Array(this.numEnvs).fill(-1);
    this.#count = new Int32Array(this.numEnvs);
    this.#tree = this.alpha > 0 ? new SumTree(slots) : null;
  }

  /**
   * Everything the buffer holds as safetensors tensors (`rb.*`): frames, actions, rewards, flags, ring positions and
   * the priority tree. `loadState` puts them back into a buffer built with the same options; saved beside a checkpoint
   * (DQN's `saveReplayBuffer`) they let a resumed run continue bit-identically. Views, not copies.
   */
  state(): Record<string, SafeTensor> {
    const t: Record<string, SafeTensor> = {
      "rb.actions": safeTensor(this.#actions, [this.#actions.length]),
      "rb.rewards": safeTensor(this.#rewards, [this.#rewards.length]),
      "rb.flags": safeTensor(this.#flags, [this.#flags.length]),
      "rb.head": safeTensor(this.#head, [this.numEnvs]),
      "rb.count": safeTensor(this.#count, [this.numEnvs]),
      "rb.max_priority": safeTensor(Float64Array.of(this.#maxPriority), [1]),
    };
    if (this.#tree) t["rb.tree"] = safeTensor(this.#tree.nodes, [this.#tree.nodes.length]);
    this.#chunks.forEach((chunks, e) => {
      chunks.forEach((c, i) => (t[`rb.frames.${e}.${i}`] = safeTensor(c, [c.length / this.frameSize, this.frameSize])));
    });
    return t;
  }

  /** Restores what `state()` returned; checks every name, dtype and shape first and names what does not fit. */
  loadState(tensors: Record<string, SafeTensor>): void {
    const mine = this.state();
    const problems: string[] = [];
    for (const [name, t] of Object.entries(mine)) {
      const got = tensors[name];
      if (!got) problems.push(`missing '${name}'`);
      else if (got.dtype !== t.dtype || got.shape.join(",") !== t.shape.join(",")) {
        problems.push(`'${name}' is ${got.dtype} [${got.shape}], this buffer has ${t.dtype} [${t.shape}]`);
      }
    }
    for (const name of Object.keys(tensors)) if (!(name in mine)) problems.push(`unexpected '${name}'`);
    if (problems.length) {
      throw new Error(
        `ReplayBuffer.loadState: the saved buffer was made with other options (capacity, envs, observation shape, ` +
          `frame stack or prioritized replay): ${problems.slice(0, 5).join("; ")}`,
      );
    }
    for (const [name, t] of Object.entries(mine)) {
      if (name !== "rb.max_priority") (t.data as Uint8Array).set(tensors[name].data as Uint8Array);
    }
    this.#maxPriority = (tensors["rb.max_priority"].data as Float64Array)[0];
  }

  /** Transitions that can be sampled now (approximately: per-env rings minus their unusable edges). */
  get size(): number {
    let n = 0;
    for (let e = 0; e < this.numEnvs; e++) n += Math.max(0, this.#count[e] - this.frameStack - this.nStep);
    return n;
  }

  #frame(env: number, slot: number): Uint8Array | Float32Array {
    const c = Math.floor(slot / this.#slotsPerChunk), at = (slot % this.#slotsPerChunk) * this.frameSize;
    return this.#chunks[env][c].subarray(at, at + this.frameSize);
  }

  /** Write the newest frame of `obs` (the whole obs when frameStack is 1) into the next slot of `env`'s ring. */
  #push(env: number, obs: ArrayLike<number>, offset: number, flags: number): number {
    const slot = (this.#head[env] + 1) % this.slotsPerEnv;
    this.#head[env] = slot;
    if (this.#count[env] < this.slotsPerEnv) this.#count[env]++;
    const frame = this.#frame(env, slot);
    const from = offset + (this.frameStack - 1) * this.frameSize;
    for (let i = 0; i < this.frameSize; i++) frame[i] = obs[from + i];
    const g = env * this.slotsPerEnv + slot;
    this.#flags[g] = flags;
    if (this.#tree) {
      // This slot and the ones whose stack history it overwrote can no longer be sampled.
      for (let i = 0; i < this.frameStack; i++) {
        this.#tree.set(env * this.slotsPerEnv + (slot + i) % this.slotsPerEnv, 0);
      }
    }
    return slot;
  }

  /**
   * Begin episodes: store the first observation of every env (`obs` is `[numEnvs, ...obsShape]`, or one env's
   * observation when `numEnvs` is 1). Call after each vector `reset()`.
   */
  start(obs: ArrayLike<number>): void {
    for (let e = 0; e < this.numEnvs; e++) this.#push(e, obs, e * this.obsSize, EPISODE_START);
  }

  /**
   * Record one vector step from the current observations: `nextObs` is what the vector env returned (the first
   * observation of a new episode where one ended, same-step autoreset), `finalObs` its `infos.finalObservation`.
   */
  add(step: {
    actions: ArrayLike<number>;
    rewards: ArrayLike<number>;
    terminated: ArrayLike<number>;
    truncated: ArrayLike<number>;
    nextObs: ArrayLike<number>;
    finalObs: ArrayLike<number>;
  }): void {
    for (let e = 0; e < this.numEnvs; e++) {
      const cur = this.#head[e];
      if (cur < 0) throw new Error("ReplayBuffer: call start(obs) with the reset observations before add()");
      const g = e * this.slotsPerEnv + cur;
      const term = step.terminated[e] ? 1 : 0, trunc = step.truncated[e] ? 1 : 0;
      this.#actions[g] = step.actions[e];
      this.#rewards[g] = step.rewards[e];
      this.#flags[g] |= HAS_TRANSITION | (term ? TERMINATED : 0) | (trunc ? TRUNCATED : 0);
      if (term || trunc) {
        this.#push(e, step.finalObs, e * this.obsSize, 0);
        this.#push(e, step.nextObs, e * this.obsSize, EPISODE_START);
      } else this.#push(e, step.nextObs, e * this.obsSize, 0);
      if (this.#tree) this.#activate(e);
    }
  }

  /** Give new transitions whose n-step window is now complete the maximum priority. */
  #activate(env: number): void {
    const head = this.#head[env], base = env * this.slotsPerEnv;
    for (let back = 1; back <= this.nStep + 2; back++) {
      const slot = (head - back + this.slotsPerEnv) % this.slotsPerEnv;
      if (!this.#sampleable(env, slot)) continue;
      if (this.#tree!.get(base + slot) === 0) this.#tree!.set(base + slot, this.#maxPriority ** this.alpha);
    }
  }

  /** Age of `slot` in `env`'s ring: 0 = oldest kept slot. */
  #age(env: number, slot: number): number {
    const count = this.#count[env], head = this.#head[env];
    return (slot - (head - count + 1) + 2 * this.slotsPerEnv) % this.slotsPerEnv;
  }

  /** A transition starts at `slot`, its stack history is intact and its n-step window is written. */
  #sampleable(env: number, slot: number): boolean {
    if (this.#head[env] < 0 || !(this.#flags[env * this.slotsPerEnv + slot] & HAS_TRANSITION)) return false;
    const age = this.#age(env, slot), count = this.#count[env];
    if (age >= count) return false;
    // The stack reaches back k − 1 slots unless the episode starts sooner.
    if (age < this.frameStack - 1 && !this.#startWithin(env, slot, age)) return false;
    // The n-step window must end at a written slot.
    let s = slot;
    for (let i = 0; i < this.nStep; i++) {
      const f = this.#flags[env * this.slotsPerEnv + s];
      if (!(f & HAS_TRANSITION)) return false;
      if (f & (TERMINATED | TRUNCATED)) return true;
      s = (s + 1) % this.slotsPerEnv;
      if (this.#age(env, s) > count - 1 || this.#age(env, s) < age) return false;
    }
    return true;
  }

  #startWithin(env: number, slot: number, back: number): boolean {
    for (let i = 0; i <= back; i++) {
      const s = (slot - i + this.slotsPerEnv) % this.slotsPerEnv;
      if (this.#flags[env * this.slotsPerEnv + s] & EPISODE_START) return true;
    }
    return false;
  }

  /** Copy the stack ending at `slot` into `out` at `offset` (frames before the episode start repeat the start). */
  #writeStack(env: number, slot: number, out: Float32Array, offset: number): void {
    const k = this.frameStack, F = this.frameSize;
    let s = slot, stopped = false;
    for (let j = k - 1; j >= 0; j--) {
      const frame = this.#frame(env, s);
      out.set(frame, offset + j * F);
      if (!stopped && this.#flags[env * this.slotsPerEnv + s] & EPISODE_START) stopped = true;
      if (!stopped) s = (s - 1 + this.slotsPerEnv) % this.slotsPerEnv;
    }
  }

  /**
   * Sample `batchSize` transitions: uniformly, or proportionally to priority^α with importance weights
   * `(N·P(i))^−β` normalized by the batch maximum when prioritized.
   */
  sample(
    batchSize: number,
    rng: { uniform(): number; int(n: number): number },
    options: { beta?: number } = {},
  ): ReplaySample {
    if (this.size === 0) throw new Error("ReplayBuffer: nothing to sample yet; add more steps first");
    const out = this.#sampleBuffers(batchSize);
    const beta = options.beta ?? 0.4;
    let maxWeight = 0;
    for (let b = 0; b < batchSize; b++) {
      let env = 0, slot = 0;
      if (this.#tree) {
        const total = this.#tree.total;
        const g = this.#tree.find(rng.uniform() * total);
        env = Math.floor(g / this.slotsPerEnv);
        slot = g % this.slotsPerEnv;
        const p = this.#tree.get(g) / total;
        const w = Math.pow(this.size * p, -beta);
        out.weights[b] = w;
        if (w > maxWeight) maxWeight = w;
      } else {
        for (let tries = 0;; tries++) {
          env = rng.int(this.numEnvs);
          slot = (this.#head[env] - rng.int(this.#count[env]) + this.slotsPerEnv) % this.slotsPerEnv;
          if (this.#sampleable(env, slot)) break;
          if (tries > 10000) throw new Error("ReplayBuffer: no sampleable transition found; add more steps first");
        }
        out.weights[b] = 1;
      }
      out.indices[b] = env * this.slotsPerEnv + slot;
      this.#fillTransition(env, slot, b, out);
    }
    if (this.#tree && maxWeight > 0) { for (let b = 0; b < batchSize; b++) out.weights[b] /= maxWeight; }
    return out;
  }

  #fillTransition(env: number, slot: number, b: number, out: ReplaySample): void {
    const base = env * this.slotsPerEnv;
    this.#writeStack(env, slot, out.obs, b * this.obsSize);
    out.actions[b] = this.#actions[base + slot];
    let ret = 0, discount = 1, s = slot, terminated = false;
    for (let i = 0; i < this.nStep; i++) {
      const f = this.#flags[base + s];
      ret += discount * this.#rewards[base + s];
      discount *= this.gamma;
      s = (s + 1) % this.slotsPerEnv; // the next frame: the final observation's slot when the episode ended here
      if (f & TERMINATED) {
        terminated = true;
        break;
      }
      if (f & TRUNCATED) break;
    }
    out.rewards[b] = ret;
    out.discounts[b] = terminated ? 0 : discount;
    this.#writeStack(env, s, out.nextObs, b * this.obsSize);
  }

  #sampleBuffers(batchSize: number): ReplaySample {
    if (this.#sample?.actions.length !== batchSize) {
      this.#sample = {
        obs: new Float32Array(batchSize * this.obsSize),
        actions: new Int32Array(batchSize),
        rewards: new Float32Array(batchSize),
        nextObs: new Float32Array(batchSize * this.obsSize),
        discounts: new Float32Array(batchSize),
        weights: new Float32Array(batchSize),
        indices: new Int32Array(batchSize),
      };
    }
    return this.#sample;
  }

  /** Set the priorities of sampled transitions (e.g. |TD error| + ε) for prioritized replay. */
  updatePriorities(indices: ArrayLike<number>, priorities: ArrayLike<number>): void {
    if (!this.#tree) return;
    for (let i = 0; i < indices.length; i++) {
      const p = priorities[i];
      if (p > this.#maxPriority) this.#maxPriority = p;
      const g = indices[i];
      if (this.#tree.get(g) > 0) this.#tree.set(g, Math.pow(p, this.alpha));
    }
  }
}
