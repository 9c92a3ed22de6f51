/**
 * The trajectory buffer: a ring of fixed-size trajectory slots in one `SharedArrayBuffer`. Inference fills a slot
 * step by step for one env; a complete slot (T steps plus the bootstrap observation) waits in the ready queue until
 * the learner trains on it and frees it. Slots are handed out in FIFO order, so the ring also bounds policy lag.
 *
 * @module
 */

/** Sizes that fix the buffer layout. */
export interface TrajectoryLayout {
  /** Number of trajectory slots in the ring. */
  numSlots: number;
  /** Rollout length T (steps per trajectory). */
  rollout: number;
  /** Values per observation. */
  obsSize: number;
  /** Observation dtype (images stay uint8 until the learner normalizes them). */
  obsDtype: "uint8" | "float32";
  /** Integers per action (1 for Discrete). */
  actSize: number;
  /** Recurrent state size per env (0 without a GRU core). */
  hiddenSize: number;
}

/** Slot states. */
export const SLOT_FREE = 0, SLOT_FILLING = 1, SLOT_READY = 2;

/** Bits of `dones`. */
export const TERMINATED = 1, TRUNCATED = 2;

/** Typed views of the trajectory buffer, each indexed `[slot, step, ...]` row-major. */
export interface TrajectoryBuffer {
  readonly layout: TrajectoryLayout;
  readonly buffer: SharedArrayBuffer | ArrayBuffer;
  /** `[numSlots, T + 1, obsSize]`: row T is the observation after the last step (for the bootstrap value). */
  readonly obs: Uint8Array | Float32Array;
  /** `[numSlots, T, actSize]`. */
  readonly actions: Int32Array;
  /** `[numSlots, T]`. */
  readonly rewards: Float32Array;
  /** `[numSlots, T]`: `TERMINATED | TRUNCATED` bits of the step (the next observation starts a new episode). */
  readonly dones: Uint8Array;
  /** `[numSlots, T]`: log-probability of the action under the behaviour policy. */
  readonly logp: Float32Array;
  /** `[numSlots, T + 1]`: behaviour value estimates (unnormalized), row T the bootstrap value. */
  readonly values: Float32Array;
  /** `[numSlots, T]`: policy version that chose each action. */
  readonly versions: Int32Array;
  /** `[numSlots, hiddenSize]`: recurrent state before step 0 (already reset if an episode began there). */
  readonly h0: Float32Array;
  /** `[numSlots]`: env that produced the slot. */
  readonly env: Int32Array;
  /** `[numSlots]`: `SLOT_FREE`, `SLOT_FILLING` or `SLOT_READY`. */
  readonly state: Int32Array;
  /** `[2 + numSlots]`: FIFO of complete slots — `[0]` head and `[1]` tail counters, then the entries. */
  readonly queue: Int32Array;
}

function align(n: number): number {
  return Math.ceil(n / 64) * 64;
}

/** Byte offsets of every array, each on a 64-byte boundary. */
function offsets(l: TrajectoryLayout): Record<string, number> {
  const S = l.numSlots, T = l.rollout;
  const sizes: [string, number][] = [
    ["obs", S * (T + 1) * l.obsSize * (l.obsDtype === "uint8" ? 1 : 4)],
    ["actions", S * T * l.actSize * 4],
    ["rewards", S * T * 4],
    ["dones", S * T],
    ["logp", S * T * 4],
    ["values", S * (T + 1) * 4],
    ["versions", S * T * 4],
    ["h0", S * l.hiddenSize * 4],
    ["env", S * 4],
    ["state", S * 4],
    ["queue", (2 + S) * 4],
  ];
  const out: Record<string, number> = {};
  let at = 0;
  for (const [name, bytes] of sizes) {
    out[name] = at;
    at += align(bytes);
  }
  out.byteLength = Math.max(at, 64);
  return out;
}

/**
 * Allocates a trajectory buffer (shared by default, so a learner or worker on another thread can read it).
 *
 * @example
 * ```ts
 * import { allocateTrajectoryBuffer } from "./trajectory_buffer.ts";
 * const buf = allocateTrajectoryBuffer({
 *   numSlots: 8, rollout: 32, obsSize: 4, obsDtype: "float32", actSize: 1, hiddenSize: 0,
 * });
 * console.assert(buf.rewards.length === 8 * 32 && buf.obs.length === 8 * 33 * 4);
 * ```
 */
export function allocateTrajectoryBuffer(layout: TrajectoryLayout, shared = true): TrajectoryBuffer {
  const bytes = offsets(layout).byteLength;
  return viewTrajectoryBuffer(shared ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes), layout);
}

/** Views of a buffer made by `allocateTrajectoryBuffer(layout)` (for the other side of a thread boundary). */
export function viewTrajectoryBuffer(
  buffer: SharedArrayBuffer | ArrayBuffer,
  layout: TrajectoryLayout,
): TrajectoryBuffer {
  const o = offsets(layout), S = layout.numSlots, T = layout.rollout;
  if (buffer.byteLength < o.byteLength) {
    throw new RangeError(`trajectory buffer: ${buffer.byteLength} bytes given, layout needs ${o.byteLength}`);
  }
  const obsLen = S * (T + 1) * layout.obsSize;
  return {
    layout,
    buffer,
    obs: layout.obsDtype === "uint8" ? new Uint8Array(buffer, o.obs, obsLen) : new Float32Array(buffer, o.obs, obsLen),
    actions: new Int32Array(buffer, o.actions, S * T * layout.actSize),
    rewards: new Float32Array(buffer, o.rewards, S * T),
    dones: new Uint8Array(buffer, o.dones, S * T),
    logp: new Float32Array(buffer, o.logp, S * T),
    values: new Float32Array(buffer, o.values, S * (T + 1)),
    versions: new Int32Array(buffer, o.versions, S * T),
    h0: new Float32Array(buffer, o.h0, S * layout.hiddenSize),
    env: new Int32Array(buffer, o.env, S),
    state: new Int32Array(buffer, o.state, S),
    queue: new Int32Array(buffer, o.queue, 2 + S),
  };
}

/**
 * The ring's bookkeeping, kept in the buffer itself so that inference (which takes and completes slots) and a
 * learner on another thread (which pops and releases them) can each hold a `TrajectoryRing` over the same buffer.
 * Free slots are found by scanning the slot states from a rotating cursor; complete ones queue in completion order.
 *
 * @example
 * ```ts
 * import { allocateTrajectoryBuffer, TrajectoryRing } from "./trajectory_buffer.ts";
 * const buf = allocateTrajectoryBuffer({
 *   numSlots: 2, rollout: 4, obsSize: 1, obsDtype: "float32", actSize: 1, hiddenSize: 0,
 * });
 * const ring = new TrajectoryRing(buf);
 * const s = ring.take(0)!;
 * ring.complete(s);
 * const learnerSide = new TrajectoryRing(buf, { attach: true }); // e.g. in a learner Worker
 * const batch = learnerSide.popReady(1)!; // [s]
 * learnerSide.release(batch);
 * ```
 */
export class TrajectoryRing {
  readonly buf: TrajectoryBuffer;
  #cursor = 0;

  /** `attach`: use a buffer another `TrajectoryRing` already initialized (don't reset its states and queue). */
  constructor(buf: TrajectoryBuffer, options: { attach?: boolean } = {}) {
    this.buf = buf;
    if (!options.attach) {
      buf.state.fill(SLOT_FREE);
      buf.queue.fill(0);
    }
  }

  /** Number of free slots. */
  get freeCount(): number {
    let n = 0;
    const state = this.buf.state;
    for (let s = 0; s < state.length; s++) if (Atomics.load(state, s) === SLOT_FREE) n++;
    return n;
  }

  /** Number of complete trajectories waiting for the learner. */
  get readyCount(): number {
    return Atomics.load(this.buf.queue, 1) - Atomics.load(this.buf.queue, 0);
  }

  /** Takes a free slot for `env`, or returns undefined when the ring is full (the learner must catch up). */
  take(env: number): number | undefined {
    const state = this.buf.state, n = state.length;
    for (let i = 0; i < n; i++) {
      const s = (this.#cursor + i) % n;
      if (Atomics.load(state, s) !== SLOT_FREE) continue;
      this.#cursor = (s + 1) % n;
      this.buf.env[s] = env;
      Atomics.store(state, s, SLOT_FILLING);
      return s;
    }
    return undefined;
  }

  /** Marks a filled slot complete and queues it for the learner (the atomic tail update publishes its data). */
  complete(slot: number): void {
    const q = this.buf.queue, n = this.buf.state.length;
    Atomics.store(this.buf.state, slot, SLOT_READY);
    const tail = Atomics.load(q, 1);
    q[2 + (tail % n)] = slot;
    Atomics.store(q, 1, tail + 1);
    Atomics.notify(q, 1);
  }

  /** Removes and returns the `n` oldest complete slots, or undefined when fewer are ready. */
  popReady(count: number): number[] | undefined {
    const q = this.buf.queue, n = this.buf.state.length;
    const head = Atomics.load(q, 0);
    if (Atomics.load(q, 1) - head < count) return undefined;
    const out: number[] = [];
    for (let i = 0; i < count; i++) out.push(q[2 + ((head + i) % n)]);
    Atomics.store(q, 0, head + count);
    return out;
  }

  /** Returns slots to the free list (after training, or when an env's partial trajectory is dropped). */
  release(slots: readonly number[]): void {
    for (const s of slots) Atomics.store(this.buf.state, s, SLOT_FREE);
  }

  /** This side's cursor (states and queue live in the buffer), for checkpoints of the serial runner. */
  snapshot(): { cursor: number } {
    return { cursor: this.#cursor };
  }

  /** Restores what `snapshot` returned. */
  restore(state: { cursor: number }): void {
    this.#cursor = state.cursor;
  }
}
