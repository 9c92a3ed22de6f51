/**
 * Plots of a run's `metrics.jsonl` against frames, drawn with Vega-Lite and rendered headless to SVG (no DOM, no
 * canvas): `plots/episodic_return.svg`, then one file per metric family (`plots/losses.svg`, `plots/charts.svg`...).
 *
 * @module
 */

import * as vega from "npm:vega@6.4.0";
import * as vl from "npm:vega-lite@6.5.0";
import { writeFileAtomic } from "../envs/_native/provision.ts";
import { readMetrics } from "./logger.ts";

/** Options of `writePlots` and `plotMetricsSvg`. */
export interface PlotOptions {
  /** Title of the x axis (default `"frames"`; metrics are logged against the global step). */
  xTitle?: string;
  /**
   * Weight of TensorBoard's exponential smoothing in [0, 1) (default 0.6). With a weight above 0 the raw series is
   * drawn faintly behind the smoothed one.
   */
  smoothing?: number;
  /** Points per series at most; longer series are averaged in consecutive buckets first (default 1000). */
  maxPoints?: number;
  /** Width of one panel in pixels (default 480). */
  width?: number;
  /** Height of one panel in pixels (default 200). */
  height?: number;
}

/** A point of a metric: `step` (x) and `value` (y). */
export interface MetricPoint {
  step: number;
  value: number;
}

/**
 * Writes SVG plots of `<runDir>/metrics.jsonl` into `<runDir>/plots/` (each file atomically) and returns their
 * paths: `episodic_return.svg` for `charts/episodic_return`, and one file per metric family (the part of the name
 * before `/`, e.g. `losses.svg` with one panel per `losses/*` metric). Families without finite values are skipped.
 *
 * @example
 * ```ts
 * import { MetricsLogger } from "./logger.ts";
 * import { writePlots } from "./plots.ts";
 *
 * const dir = Deno.makeTempDirSync();
 * {
 *   using logger = new MetricsLogger(dir, { tensorboard: false });
 *   for (let step = 0; step < 5000; step += 500) {
 *     logger.log(step, { "charts/episodic_return": step / 100, "losses/value_loss": 1 / (1 + step) });
 *   }
 * }
 * const files = await writePlots(dir);
 * console.assert(files.some((f) => f.endsWith("plots/episodic_return.svg")));
 * console.assert(files.some((f) => f.endsWith("plots/losses.svg")));
 * ```
 */
export async function writePlots(runDir: string, options: PlotOptions = {}): Promise<string[]> {
  const rows = readMetrics(runDir);
  const families = new Map<string, string[]>();
  const add = (file: string, metric: string) => {
    const list = families.get(file) ?? [];
    if (!list.includes(metric)) list.push(metric);
    families.set(file, list);
  };
  for (const row of rows) {
    for (const [key, value] of Object.entries(row)) {
      if (key === "step" || key === "time" || typeof value !== "number" || !Number.isFinite(value)) continue;
      // The return is the headline curve: it gets a file of its own rather than a panel among the other charts.
      if (key === "charts/episodic_return") add("episodic_return", key);
      else add(safeName(key.includes("/") ? key.slice(0, key.indexOf("/")) : "other"), key);
    }
  }
  const dir = `${runDir}/plots`;
  Deno.mkdirSync(dir, { recursive: true });
  const written: string[] = [];
  const order = [...families.keys()].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  for (const file of order) {
    const svg = await plotMetricsSvg(rows, families.get(file)!, options);
    const path = `${dir}/${file}.svg`;
    writeFileAtomic(path, svg);
    written.push(path);
  }
  return written;
}

/**
 * Renders `metrics` from metric rows (as `readMetrics` returns them) to an SVG string: one panel per metric, each
 * with its own y scale, sharing the x axis (the rows' `step`).
 *
 * @example
 * ```ts
 * import { plotMetricsSvg } from "./plots.ts";
 * const rows = [0, 1, 2, 3].map((i) => ({ step: 1000 * i, "losses/entropy": 1 - i / 10 }));
 * const svg = await plotMetricsSvg(rows, ["losses/entropy"], { smoothing: 0 });
 * console.assert(svg.startsWith("<svg") && svg.includes("losses/entropy"));
 * ```
 */
export async function plotMetricsSvg(
  rows: Array<Record<string, number>>,
  metrics: string[],
  options: PlotOptions = {},
): Promise<string> {
  const smoothing = options.smoothing ?? 0.6;
  const maxPoints = options.maxPoints ?? 1000;
  if (!(smoothing >= 0 && smoothing < 1)) throw new RangeError(`plots: smoothing must be in [0, 1), got ${smoothing}`);
  if (!(maxPoints >= 2)) throw new RangeError(`plots: maxPoints must be >= 2, got ${maxPoints}`);
  const values: Array<{ metric: string; kind: string; step: number; value: number }> = [];
  for (const metric of metrics) {
    const raw = downsample(series(rows, metric), maxPoints);
    for (const p of raw) values.push({ metric, kind: "raw", ...p });
    if (smoothing > 0) { for (const p of smooth(raw, smoothing)) values.push({ metric, kind: "smoothed", ...p }); }
  }
  const width = options.width ?? 480, height = options.height ?? 200;
  const x = { field: "step", type: "quantitative", title: options.xTitle ?? "frames", axis: { format: "~s" } } as const;
  const line = {
    mark: { type: "line", strokeWidth: 1.5 },
    encoding: {
      x,
      y: {
        field: "value",
        type: "quantitative",
        title: metrics.length === 1 ? metrics[0] : "value",
        scale: { zero: false },
      },
      detail: { field: "kind", type: "nominal" },
      // Raw values faint behind the smoothed curve (TensorBoard's look).
      opacity: smoothing > 0
        ? { field: "kind", type: "ordinal", sort: ["raw", "smoothed"], scale: { range: [0.25, 1] }, legend: null }
        : { value: 1 },
    },
  } as const;
  const spec: vl.TopLevelSpec = metrics.length === 1
    ? { data: { values }, width, height, title: metrics[0], ...line }
    : {
      data: { values },
      facet: {
        row: {
          field: "metric",
          type: "nominal",
          sort: metrics,
          title: null,
          header: { labelAngle: 0, labelAlign: "left", labelAnchor: "start", labelOrient: "top", labelFontSize: 12 },
        },
      },
      spec: { width, height, ...line },
      resolve: { scale: { y: "independent" } },
    };
  const view = new vega.View(vega.parse(vl.compile({ ...spec, background: "white" }).spec), {
    renderer: "none",
    logLevel: vega.Error,
  });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** The finite values of `metric` in `rows`, sorted by step (stable). */
function series(rows: Array<Record<string, number>>, metric: string): MetricPoint[] {
  const points: MetricPoint[] = [];
  for (const row of rows) {
    const value = row[metric];
    if (typeof value === "number" && Number.isFinite(value) && Number.isFinite(row.step)) {
      points.push({ step: row.step, value });
    }
  }
  return points.sort((a, b) => a.step - b.step);
}

/** Averages consecutive points into at most `max` buckets so long runs give SVGs of bounded size. */
function downsample(points: MetricPoint[], max: number): MetricPoint[] {
  if (points.length <= max) return points;
  const out: MetricPoint[] = [];
  for (let b = 0; b < max; b++) {
    const from = Math.floor((b * points.length) / max), to = Math.floor(((b + 1) * points.length) / max);
    let step = 0, value = 0;
    for (let i = from; i < to; i++) step += points[i].step, value += points[i].value;
    out.push({ step: step / (to - from), value: value / (to - from) });
  }
  return out;
}

/** TensorBoard's smoothing: an exponential moving average, debiased so the curve starts at the first value. */
function smooth(points: MetricPoint[], weight: number): MetricPoint[] {
  let last = 0, n = 0;
  return points.map((p) => {
    last = last * weight + (1 - weight) * p.value;
    n++;
    return { step: p.step, value: last / (1 - weight ** n) };
  });
}

function rank(file: string): number {
  return file === "episodic_return" ? 0 : file === "charts" ? 1 : file === "losses" ? 2 : 3;
}

function safeName(name: string): string {
  return name.replace(/[^A-Za-z0-9_.-]/g, "_") || "other";
}
