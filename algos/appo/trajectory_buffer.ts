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
  };
}

/**
 * FIFO bookkeeping of the ring on the thread that owns it: free slots are taken in order, complete ones queue for
 * the learner in completion order. The slot states are mirrored into `buf.state` for other threads.
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
 * const batch = ring.popReady(1)!; // [s]
 * ring.release(batch);
 * ```
 */
export class TrajectoryRing {
  readonly buf: TrajectoryBuffer;
  #free: number[] = [];
  #ready: number[] = [];

  constructor(buf: TrajectoryBuffer) {
    this.buf = buf;
    for (let s = 0; s < buf.layout.numSlots; s++) this.#free.push(s);
    buf.state.fill(SLOT_FREE);
  }

  /** Number of free slots. */
  get freeCount(): number {
    return this.#free.length;
  }

  /** Number of complete trajectories waiting for the learner. */
  get readyCount(): number {
    return this.#ready.length;
  }

  /** Takes a free slot for `env`, or returns undefined when the ring is full (the learner must catch up). */
  take(env: number): number | undefined {
    const s = this.#free.shift();
    if (s === undefined) return undefined;
    this.buf.state[s] = SLOT_FILLING;
    this.buf.env[s] = env;
    return s;
  }

  /** Marks a filled slot complete and queues it for the learner. */
  complete(slot: number): void {
    this.buf.state[slot] = SLOT_READY;
    this.#ready.push(slot);
  }

  /** Removes and returns the `n` oldest complete slots, or undefined when fewer are ready. */
  popReady(n: number): number[] | undefined {
    if (this.#ready.length < n) return undefined;
    return this.#ready.splice(0, n);
  }

  /** Returns slots to the free list (after training, or when an env's partial trajectory is dropped). */
  release(slots: readonly number[]): void {
    for (const s of slots) {
      this.buf.state[s] = SLOT_FREE;
      this.#free.push(s);
    }
  }

  /** The queue contents, for checkpoints of the serial runner. */
  snapshot(): { free: number[]; ready: number[] } {
    return { free: [...this.#free], ready: [...this.#ready] };
  }

  /** Restores what `snapshot` returned. */
  restore(state: { free: number[]; ready: number[] }): void {
    this.#free = [...state.free];
    this.#ready = [...state.ready];
  }
}
