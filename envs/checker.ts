/**
 * `checkEnv`: checks an env against the contract in `core.ts`, like Gymnasium's `check_env`. Every env — TypeScript or
 * native — is tested with it.
 *
 * @module
 */

import { Env, type Info } from "./core.ts";
import { Box, Dict, Discrete, MultiDiscrete, Space } from "./spaces.ts";

/** Options of `checkEnv`. */
export interface CheckEnvOptions {
  /** Seed of the determinism check (default 123). */
  seed?: number;
  /** Steps taken in each determinism run (default 50). */
  steps?: number;
  /**
   * Check that `step()` before the first `reset()` throws an Error mentioning `reset` (default true). Needs a freshly
   * made env; pass false for an env that was already reset.
   */
  checkStepBeforeReset?: boolean;
  /**
   * Check that the same seed and actions give the same trajectory (default true). Pass false for wrappers with
   * learned state that outlives `reset()`, such as `NormalizeObservation` (their other checks still run).
   */
  checkDeterminism?: boolean;
  /** Check that `render()` returns a well-formed frame when the env lists `rgb_array` (default true). */
  checkRender?: boolean;
}

/**
 * Checks `env` and throws an Error naming the first violation. It checks, in order: the spaces are `Space`s; `step()`
 * before `reset()` throws; `reset()` returns `[obs, info]` with `obs` in the observation space; `step()` returns
 * `[obs, reward, terminated, truncated, info]` with the right types; the same seed and actions give the same
 * observations, rewards and flags (compared by value, so envs may reuse their buffers); an action outside the action
 * space throws a RangeError; `render()` gives a well-formed frame; `close()` twice is safe. The env is closed
 * afterwards.
 *
 * @example
 * ```ts
 * import { checkEnv } from "./checker.ts";
 * import { make } from "./mod.ts";
 * checkEnv(make("CartPole-v1"));
 * ```
 */
export function checkEnv(env: Env<unknown, unknown>, options: CheckEnvOptions = {}): void {
  const seed = options.seed ?? 123, steps = options.steps ?? 50;
  const name = env.spec?.id ?? env.unwrapped.constructor.name;
  const fail = (message: string, cause?: unknown): never => {
    throw new Error(`checkEnv(${name}): ${message}`, cause === undefined ? undefined : { cause });
  };

  if (!(env instanceof Env)) fail("the env must extend Env");
  const obsSpace = env.observationSpace, actSpace = env.actionSpace;
  if (!(obsSpace instanceof Space)) fail(`observationSpace must be a Space, got ${describe(obsSpace)}`);
  if (!(actSpace instanceof Space)) fail(`actionSpace must be a Space, got ${describe(actSpace)}`);

  if (options.checkStepBeforeReset ?? true) {
    let threw: unknown = undefined;
    try {
      env.step(validAction(actSpace));
    } catch (e) {
      threw = e ?? new Error("undefined");
    }
    if (threw === undefined) fail('step() before reset() must throw ("call reset() before step()")');
    if (!(threw instanceof Error) || !/reset/i.test(threw.message)) {
      fail(`step() before reset() must throw an Error that says to call reset(), got ${describe(threw)}`, threw);
    }
  }

  const run = (): Trajectory => {
    actSpace.seed(seed);
    const trajectory: Trajectory = { obs: [], rewards: [], flags: [] };
    trajectory.obs.push(["the reset observation", snapshot(checkReset(env, { seed }, fail)[0])]);
    for (let t = 0; t < steps; t++) {
      const result = env.step(actSpace.sample());
      checkStepResult(result, obsSpace, t, fail);
      const [obs, reward, terminated, truncated] = result;
      trajectory.obs.push([`the observation of step ${t}`, snapshot(obs)]);
      trajectory.rewards.push(reward);
      trajectory.flags.push(`${terminated}/${truncated}`);
      // Later episodes reset without a seed: they must follow from the first seed too.
      if (terminated || truncated) {
        trajectory.obs.push([`the reset observation after step ${t}`, snapshot(checkReset(env, {}, fail)[0])]);
      }
    }
    return trajectory;
  };
  const a = run(), b = (options.checkDeterminism ?? true) ? run() : a;
  for (let i = 0; i < a.obs.length; i++) {
    const [where, obs] = a.obs[i];
    const diff = firstDifference(obs, b.obs[i][1]);
    if (diff !== undefined) {
      fail(`not deterministic: with seed ${seed} and the same actions, ${where} differs (${diff})`);
    }
  }
  for (let i = 0; i < a.rewards.length; i++) {
    if (!Object.is(a.rewards[i], b.rewards[i])) {
      fail(`not deterministic: with seed ${seed}, the reward of step ${i} was ${a.rewards[i]}, then ${b.rewards[i]}`);
    }
    if (a.flags[i] !== b.flags[i]) {
      fail(
        `not deterministic: with seed ${seed}, terminated/truncated of step ${i} was ${a.flags[i]}, then ${b.flags[i]}`,
      );
    }
  }

  checkReset(env, { seed }, fail);
  for (const bad of invalidActions(actSpace)) {
    let threw: unknown = undefined;
    try {
      env.step(bad);
    } catch (e) {
      threw = e ?? new Error("undefined");
    }
    if (!(threw instanceof RangeError)) {
      fail(
        `step(${describe(bad)}) with an action outside ${actSpace} must throw a RangeError, ` +
          (threw === undefined ? "it did not throw" : `got ${describe(threw)}`),
        threw,
      );
    }
  }

  if ((options.checkRender ?? true) && env.metadata.renderModes.includes("rgb_array")) {
    checkReset(env, { seed }, fail);
    const frame = env.render();
    if (!frame) fail("render() returned nothing although metadata.renderModes lists rgb_array");
    else {
      const { data, width, height } = frame;
      if (!(data instanceof Uint8Array) || !(width > 0) || !(height > 0) || data.length !== width * height * 3) {
        fail(`render() must return { data: Uint8Array(height*width*3), width, height }, got ${describe(frame)}`);
      }
    }
  }

  try {
    env.close();
    env.close();
  } catch (e) {
    fail(`close() must be safe to call twice, it threw ${describe(e)}`, e);
  }
}

interface Trajectory {
  obs: [where: string, obs: unknown][];
  rewards: number[];
  flags: string[];
}

type Fail = (message: string, cause?: unknown) => never;

function checkReset(env: Env<unknown, unknown>, options: { seed?: number }, fail: Fail): [unknown, Info] {
  let result: unknown;
  try {
    result = env.reset(options);
  } catch (e) {
    return fail(`reset(${JSON.stringify(options)}) threw ${describe(e)}`, e);
  }
  if (!Array.isArray(result) || result.length !== 2) {
    fail(`reset() must return [obs, info], got ${describe(result)}`);
  }
  const [obs, info] = result as [unknown, unknown];
  if (!env.observationSpace.contains(obs)) {
    fail(`reset() returned an observation ${describe(obs)} that is not in ${env.observationSpace}`);
  }
  if (!isPlainObject(info)) fail(`reset() must return an info object, got ${describe(info)}`);
  return [obs, info as Info];
}

function checkStepResult(result: unknown, obsSpace: Space<unknown>, t: number, fail: Fail): void {
  if (!Array.isArray(result) || result.length !== 5) {
    fail(`step() must return [obs, reward, terminated, truncated, info], got ${describe(result)} at step ${t}`);
  }
  const [obs, reward, terminated, truncated, info] = result as unknown[];
  if (!obsSpace.contains(obs)) fail(`step ${t} returned an observation ${describe(obs)} that is not in ${obsSpace}`);
  if (typeof reward !== "number" || Number.isNaN(reward)) {
    fail(`step ${t} returned reward ${describe(reward)}; it must be a number, not NaN`);
  }
  if (typeof terminated !== "boolean") fail(`step ${t} returned terminated ${describe(terminated)}, not a boolean`);
  if (typeof truncated !== "boolean") fail(`step ${t} returned truncated ${describe(truncated)}, not a boolean`);
  if (!isPlainObject(info)) fail(`step ${t} must return an info object, got ${describe(info)}`);
}

/** A copy by value: envs may reuse observation buffers between steps. */
function snapshot(x: unknown): unknown {
  if (ArrayBuffer.isView(x) && !(x instanceof DataView)) return Array.from(x as unknown as ArrayLike<number>);
  if (Array.isArray(x)) return x.map(snapshot);
  if (isPlainObject(x)) {
    return Object.fromEntries(Object.entries(x as Record<string, unknown>).map(([k, v]) => [k, snapshot(v)]));
  }
  return x;
}

/** Where two snapshots differ, or undefined when equal (NaN equals NaN). */
function firstDifference(a: unknown, b: unknown, path = ""): string | undefined {
  if (Array.isArray(a) && Array.isArray(b)) {
    if (a.length !== b.length) return `${path || "value"} has length ${a.length}, then ${b.length}`;
    for (let i = 0; i < a.length; i++) {
      const d = firstDifference(a[i], b[i], `${path}[${i}]`);
      if (d !== undefined) return d;
    }
    return undefined;
  }
  if (isPlainObject(a) && isPlainObject(b)) {
    const ka = Object.keys(a as object).sort(), kb = Object.keys(b as object).sort();
    if (ka.join() !== kb.join()) return `${path || "value"} has keys ${ka}, then ${kb}`;
    for (const k of ka) {
      const d = firstDifference((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], `${path}.${k}`);
      if (d !== undefined) return d;
    }
    return undefined;
  }
  return Object.is(a, b) || a === b ? undefined : `${path || "value"} was ${describe(a)}, then ${describe(b)}`;
}

function validAction(space: Space<unknown>): unknown {
  space.seed(0);
  return space.sample();
}

/** Actions just outside the space (for the RangeError check). */
function invalidActions(space: Space<unknown>): unknown[] {
  if (space instanceof Discrete) return [space.start + space.n, space.start - 1, 0.5 + space.start];
  if (space instanceof MultiDiscrete) return [Int32Array.from(space.nvec), new Int32Array(space.nvec.length + 1)];
  if (space instanceof Box) {
    const out: unknown[] = [];
    const a = space.sample();
    const i = space.high.findIndex(Number.isFinite);
    if (i >= 0 && space.dtype === "float32") {
      a[i] = Math.fround(space.high[i] + Math.max(1, Math.abs(space.high[i])));
      out.push(a);
    } else if (space.dtype === "float32" && a.length > 0) {
      a[0] = NaN;
      out.push(a);
    }
    out.push(space.dtype === "float32" ? new Float32Array(space.size + 1) : new Uint8Array(space.size + 1));
    return out;
  }
  if (space instanceof Dict) return [{}];
  return [Symbol("not an action")];
}

function isPlainObject(x: unknown): boolean {
  if (typeof x !== "object" || x === null || Array.isArray(x) || ArrayBuffer.isView(x)) return false;
  const proto = Object.getPrototypeOf(x);
  return proto === Object.prototype || proto === null;
}

function describe(x: unknown): string {
  if (x instanceof Error) return `${x.name}: ${x.message}`;
  if (ArrayBuffer.isView(x) && !(x instanceof DataView)) {
    const a = Array.from(x as unknown as ArrayLike<number>);
    return `${x.constructor.name}[${a.length > 8 ? a.slice(0, 8).join(", ") + ", ..." : a.join(", ")}]`;
  }
  if (typeof x === "symbol" || typeof x === "function") return String(x);
  try {
    return JSON.stringify(x) ?? String(x);
  } catch {
    return String(x);
  }
}
