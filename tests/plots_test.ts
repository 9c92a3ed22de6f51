import assert from "node:assert/strict";
import { MetricsLogger } from "../algos/logger.ts";
import { plotMetricsSvg, writePlots } from "../algos/plots.ts";

/** The line marks of a Vega SVG: the series each one draws (from its aria label) and its vertices in pixels. */
function lines(svg: string): Array<{ label: string; points: Array<[number, number]> }> {
  const found = [];
  const re = /<g class="mark-line role-mark[^"]*"[^>]*><path aria-label="([^"]*)"[^>]*? d="([^"]*)"/g;
  for (const [, label, d] of svg.matchAll(re)) {
    const points = d.slice(1).split("L").map((xy) => xy.split(",").map(Number) as [number, number]);
    found.push({ label, points });
  }
  return found;
}

function syntheticRun(rows: number): string {
  const dir = Deno.makeTempDirSync();
  using logger = new MetricsLogger(dir, { tensorboard: false });
  for (let i = 0; i < rows; i++) {
    logger.log(2048 * i, {
      "charts/episodic_return": 10 + 5 * i + (i % 3),
      "charts/SPS": 4000 + (i % 7),
      "losses/value_loss": 5 / (1 + i),
      "losses/policy_loss": (i % 5) / 100 - 0.02,
      "losses/approx_kl": NaN, // logged as null: no finite value, no panel
    });
  }
  return dir;
}

Deno.test("writePlots draws the return and each metric family from metrics.jsonl into plots/*.svg", async () => {
  const dir = syntheticRun(40);
  const files = await writePlots(dir);
  assert.deepEqual(files, ["episodic_return", "charts", "losses"].map((f) => `${dir}/plots/${f}.svg`));
  // Written atomically: no temp files left beside them.
  assert.deepEqual([...Deno.readDirSync(`${dir}/plots`)].map((e) => e.name).sort(), [
    "charts.svg",
    "episodic_return.svg",
    "losses.svg",
  ]);

  const ret = Deno.readTextFileSync(`${dir}/plots/episodic_return.svg`);
  assert.match(ret, /^<svg /);
  assert.match(ret, /X-axis titled 'frames'/);
  assert.match(ret, /Y-axis titled 'charts\/episodic_return'/);
  const retLines = lines(ret);
  assert.deepEqual(retLines.map((l) => l.label.split("; ").at(-1)), ["kind: raw", "kind: smoothed"]);
  for (const { points } of retLines) {
    assert.equal(points.length, 40);
    // The return rises, so the curve climbs: SVG y grows downwards.
    assert.ok(points[0][1] > points[39][1] && points[0][0] < points[39][0]);
  }

  const losses = Deno.readTextFileSync(`${dir}/plots/losses.svg`);
  assert.match(losses, /losses\/value_loss/);
  assert.match(losses, /losses\/policy_loss/);
  assert.doesNotMatch(losses, /approx_kl/);
  const lossLines = lines(losses);
  assert.equal(lossLines.length, 4); // two metrics, raw + smoothed each
  assert.ok(lossLines.every((l) => l.points.length === 40));
  assert.match(Deno.readTextFileSync(`${dir}/plots/charts.svg`), /charts\/SPS/);
});

Deno.test("plotMetricsSvg averages long series down to maxPoints and draws raw values only without smoothing", async () => {
  const rows = Array.from({ length: 5000 }, (_, i) => ({ step: i, time: 0, "losses/entropy": Math.cos(i / 300) }));
  const svg = await plotMetricsSvg(rows, ["losses/entropy"], { smoothing: 0, maxPoints: 100, xTitle: "env steps" });
  const drawn = lines(svg);
  assert.equal(drawn.length, 1);
  assert.equal(drawn[0].points.length, 100);
  assert.match(svg, /X-axis titled 'env steps'/);
  await assert.rejects(() => plotMetricsSvg(rows, ["losses/entropy"], { smoothing: 1 }), RangeError);
});

Deno.test("writePlots skips a torn last line and metrics that were never finite", async () => {
  const dir = Deno.makeTempDirSync();
  Deno.writeTextFileSync(
    `${dir}/metrics.jsonl`,
    '{"step":0,"time":1,"charts/episodic_return":1,"losses/q":null}\n' +
      '{"step":100,"time":2,"charts/episodic_return":3}\n{"step":200,"charts/epi',
  );
  const files = await writePlots(dir, { smoothing: 0 });
  assert.deepEqual(files, [`${dir}/plots/episodic_return.svg`]);
  assert.equal(lines(Deno.readTextFileSync(files[0]))[0].points.length, 2);
});
