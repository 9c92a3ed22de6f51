import assert from "node:assert/strict";
import { crc32c, SummaryWriter } from "../algos/tensorboard.ts";
import { MetricsLogger, readMetrics } from "../algos/logger.ts";
import { runPython } from "./_python.ts";

Deno.test("crc32c matches the standard check value", () => {
  assert.equal(crc32c(new TextEncoder().encode("123456789")), 0xe3069283);
});

Deno.test("TensorBoard reads the scalars our SummaryWriter wrote", async () => {
  const dir = Deno.makeTempDirSync();
  const writer = new SummaryWriter(dir);
  for (let step = 0; step < 5; step++) writer.addScalar("charts/episodic_return", step * 1.5, step * 1000);
  writer.addScalar("losses/value_loss", 0.25, 4000);
  writer.close();
  const out = await runPython(
    `
import json, sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
acc = EventAccumulator(sys.argv[1]); acc.Reload()
print(json.dumps({t: [[e.step, e.value] for e in acc.Scalars(t)] for t in acc.Tags()["scalars"]}))
`,
    [dir],
  );
  const scalars = JSON.parse(out);
  assert.deepEqual(scalars["charts/episodic_return"], [[0, 0], [1000, 1.5], [2000, 3], [3000, 4.5], [4000, 6]]);
  assert.deepEqual(scalars["losses/value_loss"], [[4000, 0.25]]);
});

Deno.test("MetricsLogger keeps complete JSONL lines and skips a torn last line", () => {
  const dir = Deno.makeTempDirSync();
  const logger = new MetricsLogger(dir, { tensorboard: false });
  logger.log(10, { "charts/SPS": 100 });
  logger.log(20, { "charts/SPS": 200 });
  logger.close();
  logger.close();
  Deno.writeTextFileSync(`${dir}/metrics.jsonl`, '{"step": 30, "charts/S', { append: true });
  const rows = readMetrics(dir);
  assert.deepEqual(rows.map((r) => [r.step, r["charts/SPS"]]), [[10, 100], [20, 200]]);
});
