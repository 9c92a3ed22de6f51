/**
 * Worker entry of `WorkerVectorEnv`: imports the env modules, builds its block of envs with `make`, then serves
 * commands from the control block until told to close. Uses the same `EnvBlock` as the sync backend.
 *
 * @module
 */

import type { Env } from "../core.ts";
import { make } from "../registry.ts";
import { EnvBlock, type EnvPhase } from "./_block.ts";
import { describeSpace, viewBuffers } from "./_layout.ts";
import {
  type BuffersMessage,
  CLOSE,
  CMD,
  type Control,
  DONE,
  ERR_LEN,
  type FromWorker,
  type InitMessage,
  PENDING,
  RESET,
  SEQ,
  slot,
  STATUS,
  STEP,
  type ToWorker,
  viewControl,
  writeErrorRecord,
} from "./_protocol.ts";

interface WorkerScope {
  onmessage: ((event: MessageEvent<ToWorker>) => void) | null;
  postMessage(message: FromWorker): void;
  close(): void;
}

const scope = self as unknown as WorkerScope;
const envs: Env<unknown, unknown>[] = [];
let start = 0;
// Messages are handled one at a time, in order, even though `init` awaits imports.
let queue: Promise<void> = Promise.resolve();

scope.onmessage = (event) => {
  queue = queue.then(() => handle(event.data));
};

async function handle(message: ToWorker): Promise<void> {
  switch (message.type) {
    case "init":
      return await init(message);
    case "buffers":
      return serve(message);
    case "abort":
      for (const env of envs) {
        try {
          env.close();
        } catch { /* the setup error is the one being reported */ }
      }
      scope.postMessage({ type: "closed" });
      scope.close();
  }
}

async function init(message: InitMessage): Promise<void> {
  start = message.start;
  try {
    for (const url of message.envModules) await import(url);
  } catch (error) {
    scope.postMessage({ type: "error", index: -1, phase: "import", error });
    return;
  }
  for (let j = 0; j < message.count; j++) {
    try {
      envs.push(make(message.id, { kwargs: message.kwargs, maxEpisodeSteps: message.maxEpisodeSteps }));
    } catch (error) {
      scope.postMessage({ type: "error", index: start + j, phase: "make", error });
      return;
    }
  }
  try {
    scope.postMessage({
      type: "spaces",
      observation: describeSpace(envs[0].observationSpace, "observation"),
      action: describeSpace(envs[0].actionSpace, "action"),
    });
  } catch (error) {
    scope.postMessage({ type: "error", index: start, phase: "make", error });
  }
}

/** The command loop: blocks this worker's thread until a CLOSE command. */
function serve(message: BuffersMessage): void {
  const block = new EnvBlock(envs, start, message.shape, viewBuffers(message.data, message.shape));
  const control = viewControl(message.control, message.numWorkers);
  const ints = control.ints, base = slot(message.worker);
  scope.postMessage({ type: "ready" });
  let seq = 0;
  for (;;) {
    Atomics.wait(ints, base + SEQ, seq);
    const next = Atomics.load(ints, base + SEQ);
    if (next === seq) continue;
    seq = next;
    const command = Atomics.load(ints, base + CMD);
    let phase: EnvPhase = "step";
    try {
      if (command === STEP) block.step();
      else if (command === RESET) {
        phase = "reset";
        const seed = control.seed[0];
        block.reset(Number.isNaN(seed) ? undefined : seed);
      } else if (command === CLOSE) {
        const failure = block.close();
        if (failure) report(control, message.worker, failure.index, "close", failure.error);
      }
    } catch (error) {
      report(control, message.worker, block.current, phase, error);
    }
    Atomics.store(ints, base + DONE, seq);
    // The atomic decrement publishes this worker's buffer writes to the main thread.
    if (Atomics.sub(ints, PENDING, 1) === 1) Atomics.notify(ints, PENDING);
    if (command === CLOSE) break;
  }
  scope.close();
}

function report(control: Control, worker: number, index: number, phase: EnvPhase, error: unknown): void {
  const e = error instanceof Error ? error : new Error(String(error));
  const base = slot(worker);
  if (Atomics.load(control.ints, base + STATUS) !== 0) return; // keep the first error
  const length = writeErrorRecord(control.errors[worker], {
    index,
    phase,
    name: e.name,
    message: e.message,
    stack: e.stack,
  });
  Atomics.store(control.ints, base + ERR_LEN, length);
  Atomics.store(control.ints, base + STATUS, 1);
}
