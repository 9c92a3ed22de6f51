/**
 * Entry of a rollout Worker: waits for its init message, then runs `serveRolloutWorker` until told to stop or until
 * an env crashes.
 *
 * @module
 */

import { type RolloutInitMessage, serveRolloutWorker } from "./rollout_worker.ts";

const scope = self as unknown as {
  onmessage: ((event: MessageEvent<RolloutInitMessage>) => void) | null;
  close(): void;
};

scope.onmessage = (event) => {
  scope.onmessage = null;
  serveRolloutWorker(event.data).finally(() => scope.close());
};
