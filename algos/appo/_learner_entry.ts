/**
 * Entry of the learner Worker (`trainAppo({ learnerWorker: true })`): trains on trajectories from the shared ring
 * and publishes weights into the shared weights buffer after each optimizer step; metrics and optimizer snapshots
 * go back by postMessage (once per step, never per env step).
 *
 * @module
 */

import {
  Adam,
  type AdamOptions,
  type MatmulPrecision,
  type OptimizerState,
  setBlasThreads,
  setMatmulPrecision,
} from "../../models/mod.ts";
import { Learner, type LearnerOptions, type LearnerStats } from "./learner.ts";
import { AppoModel, type AppoModelOptions, publishWeights, pullWeights } from "./model.ts";
import { type TrajectoryLayout, TrajectoryRing, viewTrajectoryBuffer } from "./trajectory_buffer.ts";

/** What the main thread posts to start the learner Worker. */
export interface LearnerInitMessage {
  type: "init";
  model: AppoModelOptions;
  adam: AdamOptions;
  learner: LearnerOptions;
  trajLayout: TrajectoryLayout;
  trajBuffer: SharedArrayBuffer;
  weights: SharedArrayBuffer;
  /** Int32 `[0]`: 1 asks the learner to stop. */
  control: SharedArrayBuffer;
  optimizer?: OptimizerState;
  version: number;
  samples: number;
  blasThreads?: number;
  /** The learner's GEMM precision (`setMatmulPrecision`). */
  matmulPrecision?: MatmulPrecision;
}

/** Messages the learner Worker posts. */
export type LearnerReply =
  | { type: "stats"; stats: LearnerStats; version: number; samples: number }
  | { type: "snapshot" | "final"; optimizer: OptimizerState; version: number; samples: number }
  | { type: "error"; message: string; stack?: string };

const scope = self as unknown as {
  onmessage: ((event: MessageEvent<LearnerInitMessage | { type: "snapshot" }>) => void) | null;
  postMessage(m: LearnerReply): void;
  close(): void;
};

let snapshotRequested = false;

scope.onmessage = (event) => {
  if (event.data.type === "snapshot") snapshotRequested = true;
  else {serve(event.data).catch((e) =>
      scope.postMessage({ type: "error", message: String(e?.message ?? e), stack: e?.stack })
    );}
};

async function serve(m: LearnerInitMessage): Promise<void> {
  if (m.blasThreads !== undefined) setBlasThreads(m.blasThreads);
  if (m.matmulPrecision) setMatmulPrecision(m.matmulPrecision);
  const model = new AppoModel(m.model);
  pullWeights(model, m.weights, -1);
  const optimizer = new Adam(model.parameters(), m.adam);
  if (m.optimizer) optimizer.loadStateDict(m.optimizer);
  const ring = new TrajectoryRing(viewTrajectoryBuffer(m.trajBuffer, m.trajLayout), { attach: true });
  const learner = new Learner(model, optimizer, ring, m.learner);
  learner.version = m.version;
  learner.samples = m.samples;
  const control = new Int32Array(m.control), queue = ring.buf.queue;
  const snapshot = (type: "snapshot" | "final") => {
    publishWeights(model, m.weights, learner.version);
    scope.postMessage({ type, optimizer: optimizer.stateDict(), version: learner.version, samples: learner.samples });
  };
  let lastYield = performance.now();
  while (Atomics.load(control, 0) === 0) {
    if (learner.hasWork()) {
      const stats = learner.trainChunk();
      if (stats) {
        publishWeights(model, m.weights, learner.version);
        scope.postMessage({ type: "stats", stats, version: learner.version, samples: learner.samples });
      }
    } else Atomics.wait(queue, 1, Atomics.load(queue, 1), 20);
    if (performance.now() - lastYield > 50) {
      await new Promise((r) => setTimeout(r, 0)); // receives snapshot requests
      lastYield = performance.now();
      if (snapshotRequested) {
        snapshotRequested = false;
        snapshot("snapshot");
      }
    }
  }
  optimizer.zeroGrad(); // a batch cut short leaves accumulated gradients
  snapshot("final");
}
