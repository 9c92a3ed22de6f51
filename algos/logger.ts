/**
 * Training metrics with CleanRL's names (`charts/episodic_return`, `charts/SPS`, `losses/value_loss`, ...), written
 * to TensorBoard event files and to `metrics.jsonl` (one JSON object per `log` call) in the run directory.
 *
 * @module
 */

import { SummaryWriter } from "./tensorboard.ts";

/** Options of `MetricsLogger`. */
export interface MetricsLoggerOptions {
  /** Write TensorBoard event files (default true). */
  tensorboard?: boolean;
  /** Also print each `log` call as one line to stderr (default false). */
  print?: boolean;
}

/**
 * Logs scalar metrics against a global step (frames or env steps).
 *
 * @example
 * ```ts
 * import { MetricsLogger } from "./logger.ts";
 * const dir = Deno.makeTempDirSync();
 * using logger = new MetricsLogger(dir);
 * logger.log(2048, { "charts/SPS": 5000, "losses/value_loss": 0.25 });
 * ```
 */
export class MetricsLogger {
  /** Directory the files go to. */
  readonly runDir: string;
  #tb: SummaryWriter | undefined;
  #jsonl: Deno.FsFile | undefined;
  #print: boolean;

  constructor(runDir: string, options: MetricsLoggerOptions = {}) {
    this.runDir = runDir;
    Deno.mkdirSync(runDir, { recursive: true });
    if (options.tensorboard ?? true) this.#tb = new SummaryWriter(runDir);
    this.#jsonl = Deno.openSync(`${runDir}/metrics.jsonl`, { append: true, create: true });
    this.#print = options.print ?? false;
  }

  /** Records metrics at `step`. Non-finite values are kept in JSONL as null and skipped in TensorBoard. */
  log(step: number, metrics: Record<string, number>): void {
    const time = Date.now() / 1000;
    for (const [tag, value] of Object.entries(metrics)) {
      if (Number.isFinite(value)) this.#tb?.addScalar(tag, value, step, time);
    }
    const line = JSON.stringify({ step, time, ...metrics }) + "\n";
    // One write per line keeps every complete line readable after a crash.
    this.#jsonl?.writeSync(new TextEncoder().encode(line));
    if (this.#print) console.error(line.trimEnd());
  }

  /** Flushes the TensorBoard file. */
  flush(): void {
    this.#tb?.flush();
  }

  /** Flushes and closes both files. Safe to call twice. */
  close(): void {
    this.#tb?.close();
    this.#tb = undefined;
    this.#jsonl?.close();
    this.#jsonl = undefined;
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/** Reads `metrics.jsonl` back (skipping a torn last line), for plots and tests. */
export function readMetrics(runDir: string): Array<Record<string, number>> {
  const text = Deno.readTextFileSync(`${runDir}/metrics.jsonl`);
  const rows: Array<Record<string, number>> = [];
  for (const line of text.split("\n")) {
    if (!line) continue;
    try {
      rows.push(JSON.parse(line));
    } catch {
      // A crash mid-write can leave a partial last line; earlier lines stay valid.
    }
  }
  return rows;
}
