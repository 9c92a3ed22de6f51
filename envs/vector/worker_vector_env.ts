/**
 * `WorkerVectorEnv`: the vector env API with envs stepped in Deno Workers that share one buffer.
 *
 * @module
 */

import type { Env } from "../core.ts";
import { make, type MakeOptions } from "../registry.ts";
import type { Space } from "../spaces.ts";
import { EnvBlock, envError } from "./_block.ts";
import {
  allocateBuffers,
  batchSpace,
  copyActions,
  describeSpace,
  sameSpace,
  type SpaceDescription,
  spaceFromDescription,
  type VectorBuffers,
  type VectorShape,
  vectorShape,
} from "./_layout.ts";
import {
  allocateControl,
  CLOSE,
  CMD,
  type Control,
  DONE,
  ERR_LEN,
  errorFromRecord,
  type FromWorker,
  PENDING,
  readErrorRecord,
  RESET,
  SEQ,
  slot,
  STATUS,
  STEP,
  type ToWorker,
} from "./_protocol.ts";
import type { VectorEnv, VectorInfo, VectorResetOptions, VectorResetResult, VectorStepResult } from "./vector_env.ts";

/** Options of `WorkerVectorEnv.create`. */
export interface WorkerVectorEnvOptions extends MakeOptions {
  /** Number of envs. */
  numEnvs: number;
  /**
   * Number of Workers, each stepping a contiguous block of envs. Default: `min(numEnvs, hardwareConcurrency)`, one
   * fewer when `stepInMainThread` (the main thread is then one of the stepping threads).
   */
  numWorkers?: number;
  /**
   * Modules each Worker imports before calling `make`, so that the ids they `register` exist there (a Worker starts
   * with an empty registry). Give URLs (`import.meta.resolve("./my_env.ts")`, `new URL(...)`); they must import the
   * same `registry.ts` as this module. Default: `envs/mod.ts`, which registers every built-in env.
   */
  envModules?: (string | URL)[];
  /** Also step one block of envs in the main thread during `recv()`/`reset()` (it waits anyway); default false. */
  stepInMainThread?: boolean;
  /**
   * How the main thread waits for the Workers: `"block"` (default) sleeps in `Atomics.wait` (lowest latency; the
   * event loop pauses meanwhile); `"async"` awaits `Atomics.waitAsync`, so timers, I/O and other tasks run while the
   * envs step.
   */
  wait?: "block" | "async";
  /** Microseconds the main thread polls before sleeping when it waits for Workers (default 0 for "block"). */
  spinMicros?: number;
  /** Milliseconds `close()` lets the Workers close their envs before terminating them (default 5000). */
  closeTimeoutMs?: number;
  /**
   * Milliseconds `reset()`/`recv()` wait for the Workers before giving up: the vector env is then closed and the call
   * rejects naming the Workers (and envs) that did not answer, e.g. a native env stuck on a dead engine. Default
   * 60000; `Infinity` waits forever.
   */
  timeoutMs?: number;
}

type State = "ready" | "sent" | "new" | "closed";

/**
 * Steps `numEnvs` envs in Deno Workers. Each Worker builds its envs itself with `make(id, { kwargs,
 * maxEpisodeSteps })` after importing `envModules`, and writes observations, rewards and flags straight into one
 * `SharedArrayBuffer`. Per step the threads only exchange `Atomics` signals (no postMessage, no allocation).
 * API, buffer layout, same-step autoreset and seeding are those of `SyncVectorEnv`, with identical results.
 *
 * An env that throws closes everything (every Worker is terminated) and the call rejects with an Error naming the
 * env index, whose `cause` is the original error rebuilt on this side (name, message, stack). `close()` asks every
 * Worker to close its envs (native envs own engine processes), waits up to `closeTimeoutMs`, then terminates it.
 * A Worker silent for `timeoutMs` (a hung native env) is named in the rejection and terminated.
 *
 * Cost: a batched step through one Worker takes about 4-8 µs more than stepping the same envs in this thread
 * (2-core machine, `bench/vector_bench.ts`); Workers pay off once a batch's env work exceeds that, and on
 * machines with cores to spare. `stepInMainThread: true` makes the main thread one of the stepping threads.
 *
 * @example
 * ```ts
 * import { WorkerVectorEnv } from "./worker_vector_env.ts";
 *
 * // The Workers import envs/mod.ts (options.envModules), which registers CartPole-v1 there.
 *
 * await using envs = await WorkerVectorEnv.create("CartPole-v1", { numEnvs: 4, numWorkers: 2 });
 * let [obs] = await envs.reset({ seed: 42 });
 * const actions = envs.buffers.actions; // write actions in place, then send() without arguments
 * for (let t = 0; t < 100; t++) {
 *   for (let i = 0; i < envs.numEnvs; i++) actions[i] = obs[i * 4 + 2] > 0 ? 1 : 0;
 *   envs.send();
 *   [obs] = await envs.recv();
 * }
 * ```
 */
export class WorkerVectorEnv implements VectorEnv {
  readonly numEnvs: number;
  readonly singleObservationSpace: Space<unknown>;
  readonly singleActionSpace: Space<unknown>;
  readonly buffers: VectorBuffers;
  /** The shared buffer behind `buffers`. */
  readonly buffer: SharedArrayBuffer;
  /** Number of Workers. */
  readonly numWorkers: number;
  readonly #shape: VectorShape;
  readonly #workers: Worker[];
  readonly #control: Control;
  readonly #mainBlock?: EnvBlock;
  readonly #infos: VectorInfo;
  readonly #stepResult: VectorStepResult;
  readonly #wait: "block" | "async";
  readonly #spinMs: number;
  readonly #closeTimeoutMs: number;
  readonly #timeoutMs: number;
  /** Env index range of each Worker, for error messages. */
  readonly #blocks: { start: number; count: number }[];
  #observationSpace?: Space<unknown>;
  #actionSpace?: Space<unknown>;
  #state: State = "new";
  /** Error from the main thread's block during the step in flight, reported after the Workers finish. */
  #mainError?: Error;

  /** Use `WorkerVectorEnv.create()`: setup is asynchronous. */
  private constructor(setup: Setup) {
    this.numEnvs = setup.shape.numEnvs;
    this.numWorkers = setup.workers.length;
    this.singleObservationSpace = setup.observationSpace;
    this.singleActionSpace = setup.actionSpace;
    this.#shape = setup.shape;
    this.#workers = setup.workers;
    this.#control = setup.control;
    this.buffer = setup.buffer;
    this.buffers = setup.buffers;
    this.#mainBlock = setup.mainBlock;
    this.#wait = setup.options.wait ?? "block";
    this.#spinMs = (setup.options.spinMicros ?? 0) / 1000;
    this.#closeTimeoutMs = setup.options.closeTimeoutMs ?? 5000;
    this.#timeoutMs = setup.options.timeoutMs ?? 60_000;
    this.#blocks = setup.blocks;
    const views = this.buffers;
    this.#infos = {
      finalObservation: views.finalObservation,
      episodeReturn: views.episodeReturn,
      episodeLength: views.episodeLength,
    };
    this.#stepResult = [views.observations, views.rewards, views.terminated, views.truncated, this.#infos];
    for (const worker of this.#workers) {
      // An uncaught error outside the command loop (which catches everything) would otherwise crash this process.
      worker.onerror = (event) => {
        event.preventDefault();
        console.error(`WorkerVectorEnv: a Worker failed outside any env call: ${event.message}`);
      };
    }
  }

  /**
   * Starts the Workers, builds the envs in them and allocates the shared buffers.
   *
   * @param id a registered env id (see `options.envModules` for ids registered by other modules).
   */
  static async create(id: string, options: WorkerVectorEnvOptions): Promise<WorkerVectorEnv> {
    const numEnvs = options.numEnvs;
    if (!Number.isInteger(numEnvs) || numEnvs < 1) {
      throw new RangeError(`WorkerVectorEnv: numEnvs must be a positive integer, got ${numEnvs}`);
    }
    const inMain = options.stepInMainThread ?? false;
    const cores = navigator.hardwareConcurrency || 1;
    const numWorkers = options.numWorkers ?? Math.max(inMain ? 0 : 1, Math.min(numEnvs, cores) - (inMain ? 1 : 0));
    if (!Number.isInteger(numWorkers) || numWorkers < 0 || numWorkers + (inMain ? 1 : 0) > numEnvs) {
      throw new RangeError(
        `WorkerVectorEnv: numWorkers must be an integer in [${inMain ? 0 : 1}, ${numEnvs - (inMain ? 1 : 0)}] ` +
          `for ${numEnvs} envs, got ${numWorkers}`,
      );
    }
    if (!inMain && numWorkers === 0) throw new RangeError("WorkerVectorEnv: numWorkers must be at least 1");
    const envModules = (options.envModules ?? [new URL("../mod.ts", import.meta.url)]).map(absoluteUrl);
    const makeOptions: MakeOptions = { kwargs: options.kwargs, maxEpisodeSteps: options.maxEpisodeSteps };
    const blocks = splitBlocks(numEnvs, numWorkers + (inMain ? 1 : 0));

    const workers: Worker[] = [];
    const mailboxes: Mailbox[] = [];
    const mainEnvs: Env<unknown, unknown>[] = [];
    try {
      for (let w = 0; w < numWorkers; w++) {
        const worker = new Worker(new URL("./_worker.ts", import.meta.url), { type: "module" });
        workers.push(worker);
        mailboxes.push(new Mailbox(worker, w));
        post(worker, { type: "init", id, ...makeOptions, envModules, start: blocks[w].start, count: blocks[w].count });
      }
      let mainSpaces: { observation: SpaceDescription; action: SpaceDescription } | undefined;
      if (inMain) {
        // The Workers are importing in parallel; build the main thread's share meanwhile.
        const { start, count } = blocks[numWorkers];
        for (const url of envModules) await import(url);
        for (let j = 0; j < count; j++) {
          try {
            mainEnvs.push(make(id, makeOptions));
          } catch (e) {
            throw envError(start + j, "make", e, " (main thread)");
          }
        }
        mainSpaces = {
          observation: describeSpace(mainEnvs[0].observationSpace, "observation"),
          action: describeSpace(mainEnvs[0].actionSpace, "action"),
        };
      }
      const replies = await Promise.all(mailboxes.map((m) => m.next()));
      const spaces = replies.map((reply, w) => {
        if (reply.type === "error") {
          const what = reply.phase === "import"
            ? `importing envModules [${envModules.join(", ")}]`
            : `make("${id}") for env ${reply.index}`;
          const message = reply.error instanceof Error ? reply.error.message : String(reply.error);
          throw new Error(`WorkerVectorEnv: Worker ${w} failed ${what}: ${message}`, { cause: reply.error });
        }
        if (reply.type !== "spaces") throw new Error(`WorkerVectorEnv: unexpected message ${reply.type} in setup`);
        return reply;
      });
      if (mainSpaces) spaces.push({ type: "spaces", ...mainSpaces });
      for (let b = 1; b < spaces.length; b++) {
        if (
          !sameSpace(spaces[0].observation, spaces[b].observation) || !sameSpace(spaces[0].action, spaces[b].action)
        ) {
          throw new TypeError(`WorkerVectorEnv: env ${blocks[b].start} has other spaces than env 0`);
        }
      }
      const observationSpace = spaceFromDescription(spaces[0].observation);
      const actionSpace = spaceFromDescription(spaces[0].action);
      const shape = vectorShape(numEnvs, observationSpace, actionSpace);
      const { buffer, views } = allocateBuffers(shape, true);
      const control = allocateControl(numWorkers);
      control.seed[0] = NaN;
      for (let w = 0; w < numWorkers; w++) {
        post(workers[w], {
          type: "buffers",
          data: buffer as SharedArrayBuffer,
          control: control.buffer,
          shape,
          worker: w,
          numWorkers,
        });
      }
      for (const reply of await Promise.all(mailboxes.map((m) => m.next()))) {
        if (reply.type !== "ready") throw new Error(`WorkerVectorEnv: unexpected message ${reply.type} in setup`);
      }
      for (const m of mailboxes) m.detach();
      const mainBlock = inMain ? new EnvBlock(mainEnvs, blocks[numWorkers].start, shape, views) : undefined;
      return new WorkerVectorEnv({
        shape,
        workers,
        control,
        buffer: buffer as SharedArrayBuffer,
        buffers: views,
        mainBlock,
        observationSpace,
        actionSpace,
        options,
        blocks,
      });
    } catch (error) {
      await abortSetup(workers, mailboxes, options.closeTimeoutMs ?? 5000);
      for (const env of mainEnvs) {
        try {
          env.close();
        } catch { /* the setup error is the one to report */ }
      }
      throw error;
    }
  }

  get observationSpace(): Space<unknown> {
    return (this.#observationSpace ??= batchSpace(this.singleObservationSpace, this.numEnvs));
  }

  get actionSpace(): Space<unknown> {
    return (this.#actionSpace ??= batchSpace(this.singleActionSpace, this.numEnvs));
  }

  get closed(): boolean {
    return this.#state === "closed";
  }

  resetSync(options: VectorResetOptions = {}): VectorResetResult {
    this.#startReset(options);
    this.#finishSync("reset");
    return [this.buffers.observations, this.#infos];
  }

  async reset(options: VectorResetOptions = {}): Promise<VectorResetResult> {
    this.#startReset(options);
    if (this.#wait === "async") await this.#finishAsync("reset");
    else this.#finishSync("reset");
    return [this.buffers.observations, this.#infos];
  }

  send(actions?: ArrayLike<number>): void {
    this.#assertOpen("send");
    if (this.#state === "new") throw new Error("WorkerVectorEnv: call reset() before step()");
    if (this.#state === "sent") throw new Error("WorkerVectorEnv: call recv() for the step in flight before send()");
    copyActions(actions ?? this.buffers.actions, this.buffers.actions, this.singleActionSpace, this.#shape);
    this.#command(STEP);
    this.#state = "sent";
  }

  recvSync(): VectorStepResult {
    this.#assertSent();
    this.#finishSync("step");
    return this.#stepResult;
  }

  recv(): Promise<VectorStepResult> {
    if (this.#wait === "async") return this.#recvAsync();
    try {
      return Promise.resolve(this.recvSync());
    } catch (e) {
      return Promise.reject(e);
    }
  }

  stepSync(actions?: ArrayLike<number>): VectorStepResult {
    this.send(actions);
    return this.recvSync();
  }

  step(actions?: ArrayLike<number>): Promise<VectorStepResult> {
    try {
      this.send(actions);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.recv();
  }

  /**
   * Closes every env and terminates every Worker. Waits (blocking) for a step in flight and for the Workers to close
   * their envs, at most `closeTimeoutMs` in all. Safe to call more than once.
   */
  close(): void {
    if (this.#state === "closed") return;
    const ints = this.#control.ints, workers = this.#workers;
    const inFlight = this.#state === "sent";
    this.#state = "closed";
    // A step in flight must finish before its Workers can take the CLOSE command.
    if (inFlight) waitFor(ints, () => Atomics.load(ints, PENDING) === 0, this.#closeTimeoutMs);
    // Idle Workers (every one, unless some hang) close their envs; the env objects may own engine processes.
    const closing: { w: number; seq: number }[] = [];
    for (let w = 0; w < workers.length; w++) {
      const base = slot(w), seq = Atomics.load(ints, base + SEQ);
      if (Atomics.load(ints, base + DONE) !== seq) continue;
      Atomics.store(ints, base + STATUS, 0);
      closing.push({ w, seq: seq + 1 });
    }
    Atomics.add(ints, PENDING, closing.length);
    for (const { w } of closing) {
      Atomics.store(ints, slot(w) + CMD, CLOSE);
      Atomics.add(ints, slot(w) + SEQ, 1);
      Atomics.notify(ints, slot(w) + SEQ, 1);
    }
    const done = (w: number, seq: number) => Atomics.load(ints, slot(w) + DONE) === seq;
    waitFor(ints, () => closing.every(({ w, seq }) => done(w, seq)), this.#closeTimeoutMs);
    for (const worker of workers) worker.terminate();
    // Releases a recv() awaiting Workers that never answered (wait: "async"); it then sees the closed state.
    Atomics.store(ints, PENDING, 0);
    Atomics.notify(ints, PENDING);
    const mainFailure = this.#mainBlock?.close();
    const unclosed = workers.map((_, w) => w).filter((w) => !closing.some((c) => c.w === w && done(w, c.seq)));
    if (unclosed.length > 0) {
      console.error(
        `WorkerVectorEnv: Worker(s) ${unclosed.join(", ")} did not close their envs within ${this.#closeTimeoutMs} ` +
          `ms; terminated`,
      );
    }
    const error = this.#workerError(closing.map((c) => c.w));
    if (error) throw error;
    if (mainFailure) throw envError(mainFailure.index, "close", mainFailure.error);
  }

  [Symbol.dispose](): void {
    this.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    try {
      this.close();
      return Promise.resolve();
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Tells every Worker to run `command`; the main thread's block (if any) runs it in `#finish`. */
  #command(command: number): void {
    const ints = this.#control.ints;
    Atomics.store(ints, PENDING, this.#workers.length);
    for (let w = 0; w < this.#workers.length; w++) {
      const base = slot(w);
      Atomics.store(ints, base + CMD, command);
      Atomics.add(ints, base + SEQ, 1);
      Atomics.notify(ints, base + SEQ, 1);
    }
  }

  #startReset(options: VectorResetOptions): void {
    this.#assertOpen("reset");
    if (this.#state === "sent") throw new Error("WorkerVectorEnv: call recv() for the step in flight before reset()");
    this.#control.seed[0] = options.seed ?? NaN;
    this.#command(RESET);
    this.#state = "sent";
  }

  async #recvAsync(): Promise<VectorStepResult> {
    this.#assertSent();
    await this.#finishAsync("step");
    return this.#stepResult;
  }

  #assertSent(): void {
    this.#assertOpen("recv");
    if (this.#state !== "sent") throw new Error("WorkerVectorEnv: call send(actions) before recv()");
  }

  /** Runs the main thread's share of the command in flight (its error is reported after the Workers finish). */
  #runMainBlock(phase: "reset" | "step"): void {
    const main = this.#mainBlock;
    if (!main) return;
    try {
      if (phase === "step") main.step();
      else main.reset(Number.isNaN(this.#control.seed[0]) ? undefined : this.#control.seed[0]);
    } catch (e) {
      this.#mainError = envError(main.current, phase, e, " (main thread)");
    }
  }

  /** Polls for `spinMicros` before sleeping: a wake-up costs more than a short spin when Workers are about done. */
  #spin(): number {
    const ints = this.#control.ints;
    if (this.#spinMs > 0 && Atomics.load(ints, PENDING) !== 0) {
      const until = performance.now() + this.#spinMs;
      while (Atomics.load(ints, PENDING) !== 0 && performance.now() < until) { /* spin */ }
    }
    return Atomics.load(ints, PENDING);
  }

  /** Finishes the command in flight, sleeping in `Atomics.wait` (blocks this thread). */
  #finishSync(phase: "reset" | "step"): void {
    this.#runMainBlock(phase);
    const ints = this.#control.ints;
    let pending = this.#spin();
    if (pending !== 0) {
      const deadline = performance.now() + this.#timeoutMs;
      while (pending !== 0) {
        const left = deadline - performance.now();
        if (left <= 0) break;
        Atomics.wait(ints, PENDING, pending, left);
        pending = Atomics.load(ints, PENDING);
      }
    }
    this.#settle(phase, pending);
  }

  /** Finishes the command in flight, awaiting `Atomics.waitAsync` (the event loop runs meanwhile). */
  async #finishAsync(phase: "reset" | "step"): Promise<void> {
    this.#runMainBlock(phase);
    const ints = this.#control.ints;
    let pending = this.#spin();
    if (pending !== 0) {
      const deadline = performance.now() + this.#timeoutMs;
      while (pending !== 0) {
        const left = deadline - performance.now();
        if (left <= 0) break;
        const result = Atomics.waitAsync(ints, PENDING, pending, left);
        if (result.async) await result.value;
        // close() may run while this call awaits.
        if (this.#state === "closed") throw new Error(`WorkerVectorEnv: close() was called during ${phase}()`);
        pending = Atomics.load(ints, PENDING);
      }
    }
    this.#settle(phase, pending);
  }

  /** After the wait: a timeout or an env error closes everything and throws; otherwise the env is ready. */
  #settle(phase: "reset" | "step", pending: number): void {
    if (pending !== 0) {
      const error = this.#timeoutError(phase);
      this.#state = "ready"; // close() then skips waiting for the step again and closes the idle Workers' envs
      try {
        this.close();
      } catch { /* the timeout is the error to report */ }
      throw error;
    }
    this.#state = "ready";
    const error = this.#workerError() ?? this.#mainError;
    if (error) {
      this.#mainError = undefined;
      try {
        this.close();
      } catch { /* the env error is the one to report */ }
      throw error;
    }
  }

  /** Names the Workers that have not finished the command in flight. */
  #timeoutError(phase: "reset" | "step"): Error {
    const ints = this.#control.ints;
    const late = [];
    for (let w = 0; w < this.#workers.length; w++) {
      if (Atomics.load(ints, slot(w) + DONE) !== Atomics.load(ints, slot(w) + SEQ)) {
        const { start, count } = this.#blocks[w];
        late.push(`Worker ${w} (envs ${start}-${start + count - 1})`);
      }
    }
    return new Error(
      `WorkerVectorEnv: ${late.join(", ")} did not finish ${phase}() within ${this.#timeoutMs} ms ` +
        `(options.timeoutMs); the vector env is closed`,
    );
  }

  /** The first error a Worker (of `which`) recorded (clearing it), as an Error naming the env, or undefined. */
  #workerError(which?: number[]): Error | undefined {
    const ints = this.#control.ints;
    for (let w = 0; w < this.#workers.length; w++) {
      if (which && !which.includes(w)) continue;
      const base = slot(w);
      if (Atomics.load(ints, base + STATUS) === 0) continue;
      const record = readErrorRecord(this.#control.errors[w], Atomics.load(ints, base + ERR_LEN));
      Atomics.store(ints, base + STATUS, 0);
      return envError(record.index, record.phase, errorFromRecord(record), ` (Worker ${w})`);
    }
    return undefined;
  }

  #assertOpen(what: string): void {
    if (this.#state === "closed") throw new Error(`WorkerVectorEnv: ${what}() after close()`);
  }
}

/** Everything `create` hands to the constructor. */
interface Setup {
  shape: VectorShape;
  workers: Worker[];
  control: Control;
  buffer: SharedArrayBuffer;
  buffers: VectorBuffers;
  mainBlock?: EnvBlock;
  observationSpace: Space<unknown>;
  actionSpace: Space<unknown>;
  options: WorkerVectorEnvOptions;
  blocks: { start: number; count: number }[];
}

/** Splits `n` envs into `parts` contiguous blocks whose sizes differ by at most one. */
function splitBlocks(n: number, parts: number): { start: number; count: number }[] {
  const blocks = [];
  let start = 0;
  for (let b = 0; b < parts; b++) {
    const count = Math.floor(n / parts) + (b < n % parts ? 1 : 0);
    blocks.push({ start, count });
    start += count;
  }
  return blocks;
}

/**
 * Blocks (in `Atomics.wait` on the pending counter, waking at least every millisecond) until `condition()` holds or
 * `timeoutMs` pass; returns whether it holds. Only for setup/teardown paths.
 */
function waitFor(ints: Int32Array, condition: () => boolean, timeoutMs: number): boolean {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    const left = deadline - performance.now();
    if (left <= 0) return false;
    Atomics.wait(ints, PENDING, Atomics.load(ints, PENDING), Math.min(left, 1));
  }
  return true;
}

function post(worker: Worker, message: ToWorker): void {
  try {
    worker.postMessage(message);
  } catch (e) {
    // A DataCloneError: kwargs travel to the Workers by structured clone.
    throw new TypeError(`WorkerVectorEnv: options.kwargs must be structured-cloneable (plain data): ${e}`, {
      cause: e,
    });
  }
}

/** A Worker resolves relative specifiers against its own script, so only absolute URLs mean what the caller meant. */
function absoluteUrl(url: string | URL): string {
  if (URL.canParse(String(url))) return String(url);
  throw new TypeError(
    `WorkerVectorEnv: envModules entries must be absolute URLs, got "${url}" ` +
      `(use import.meta.resolve("${url}") or new URL("${url}", import.meta.url))`,
  );
}

/** Asks each Worker to close its envs, waits up to `timeoutMs`, then terminates all of them. */
async function abortSetup(workers: Worker[], mailboxes: Mailbox[], timeoutMs: number): Promise<void> {
  for (const worker of workers) post(worker, { type: "abort" });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<void>((resolve) => timer = setTimeout(resolve, timeoutMs));
  const closed = Promise.all(mailboxes.map(async (m) => {
    try {
      while ((await m.next()).type !== "closed") { /* skip replies to earlier messages */ }
    } catch { /* a Worker that died is as good as closed */ }
  }));
  await Promise.race([closed, timeout]);
  clearTimeout(timer);
  for (const worker of workers) worker.terminate();
}

/** Setup messages of one Worker as a queue of Promises; a Worker error rejects the next one. */
class Mailbox {
  readonly #queue: FromWorker[] = [];
  readonly #waiters: { resolve: (m: FromWorker) => void; reject: (e: Error) => void }[] = [];
  #failure?: Error;

  constructor(readonly worker: Worker, index: number) {
    worker.onmessage = (event: MessageEvent<FromWorker>) => {
      const waiter = this.#waiters.shift();
      if (waiter) waiter.resolve(event.data);
      else this.#queue.push(event.data);
    };
    worker.onerror = (event) => {
      event.preventDefault();
      this.#failure = new Error(`WorkerVectorEnv: Worker ${index} failed during setup: ${event.message}`, {
        cause: event.error,
      });
      for (const waiter of this.#waiters.splice(0)) waiter.reject(this.#failure);
    };
  }

  next(): Promise<FromWorker> {
    const message = this.#queue.shift();
    if (message) return Promise.resolve(message);
    if (this.#failure) return Promise.reject(this.#failure);
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  detach(): void {
    this.worker.onmessage = null;
    this.worker.onerror = null;
  }
}
