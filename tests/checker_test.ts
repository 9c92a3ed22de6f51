import assert from "node:assert/strict";
import {
  Box,
  checkEnv,
  Dict,
  Discrete,
  Env,
  make,
  MultiDiscrete,
  type ResetOptions,
  type ResetResult,
  type RgbFrame,
  type StepResult,
} from "../envs/mod.ts";

type Fault =
  | "none"
  | "obsSpaceNotSpace"
  | "stepBeforeResetWorks"
  | "stepBeforeResetWrongMessage"
  | "resetObsOutOfSpace"
  | "resetReturnsObsOnly"
  | "stepReturnsFour"
  | "rewardNaN"
  | "rewardString"
  | "terminatedNumber"
  | "infoNotObject"
  | "unseeded"
  | "ignoresSeed"
  | "acceptsBadAction"
  | "badActionTypeError"
  | "closeTwiceThrows"
  | "badRender"
  | "stepObsWrongLength";

/** A small random-walk env that can be broken in one chosen way. */
class Walk extends Env<Float32Array, number> {
  readonly observationSpace: Box<"float32"> = new Box(-10, 10, { shape: [2] });
  readonly actionSpace: Discrete = new Discrete(3);
  override metadata = { renderModes: ["rgb_array"] };
  readonly #fault: Fault;
  readonly #obs = new Float32Array(2); // reused between steps, like native envs' buffers
  #ready = false;
  #closed = false;
  #t = 0;

  constructor(fault: Fault = "none") {
    super();
    this.#fault = fault;
    if (fault === "obsSpaceNotSpace") (this as { observationSpace: unknown }).observationSpace = { shape: [2] };
  }

  reset(options: ResetOptions = {}): ResetResult<Float32Array> {
    if (this.#fault !== "ignoresSeed") this.seedFromReset(options);
    this.#ready = true;
    this.#t = 0;
    this.#obs[0] = this.rng.uniform(-1, 1);
    this.#obs[1] = this.#fault === "resetObsOutOfSpace" ? 11 : 0;
    if (this.#fault === "resetReturnsObsOnly") return this.#obs as unknown as ResetResult<Float32Array>;
    return [this.#obs, {}];
  }

  step(action: number): StepResult<Float32Array> {
    if (!this.#ready) {
      if (this.#fault === "stepBeforeResetWrongMessage") throw new Error("oops");
      if (this.#fault !== "stepBeforeResetWorks") throw new Error("Walk: call reset() before step()");
    }
    if (this.#fault === "badActionTypeError" && !this.actionSpace.contains(action)) throw new TypeError("bad");
    if (this.#fault !== "acceptsBadAction") this.actionSpace.assertContains(action, "action");
    const noise = this.#fault === "unseeded" ? Math.random() : this.rng.random();
    this.#obs[0] = Math.max(-10, Math.min(10, this.#obs[0] + (action - 1) + noise - 0.5));
    this.#obs[1] = ++this.#t / 10;
    const terminated = Math.abs(this.#obs[0]) >= 10;
    const truncated = this.#t >= 20;
    const obs = this.#fault === "stepObsWrongLength" ? new Float32Array(3) : this.#obs;
    if (this.#fault === "stepReturnsFour") return [obs, 1, terminated, {}] as unknown as StepResult<Float32Array>;
    const reward = this.#fault === "rewardNaN" ? NaN : this.#fault === "rewardString" ? "1" as unknown as number : 1;
    const term = this.#fault === "terminatedNumber" ? 0 as unknown as boolean : terminated;
    const info = this.#fault === "infoNotObject" ? null as unknown as Record<string, unknown> : {};
    return [obs, reward, term, truncated, info];
  }

  override render(): RgbFrame | undefined {
    const n = this.#fault === "badRender" ? 5 : 2 * 3 * 3;
    return { data: new Uint8Array(n), width: 3, height: 2 };
  }

  override close(): void {
    if (this.#closed && this.#fault === "closeTwiceThrows") throw new Error("already closed");
    this.#closed = true;
  }
}

Deno.test("checkEnv passes a correct env that reuses its observation buffer", () => {
  checkEnv(new Walk());
});

const caught: [Fault, RegExp][] = [
  ["obsSpaceNotSpace", /observationSpace must be a Space/],
  ["stepBeforeResetWorks", /step\(\) before reset\(\) must throw/],
  ["stepBeforeResetWrongMessage", /says to call reset\(\).*oops/],
  ["resetObsOutOfSpace", /reset\(\) returned an observation .* not in Box/],
  ["resetReturnsObsOnly", /reset\(\) must return \[obs, info\]/],
  ["stepReturnsFour", /step\(\) must return \[obs, reward, terminated, truncated, info\]/],
  ["rewardNaN", /reward NaN|reward null/],
  ["rewardString", /reward "1"/],
  ["terminatedNumber", /terminated 0, not a boolean/],
  ["infoNotObject", /info object, got null/],
  ["unseeded", /not deterministic/],
  ["ignoresSeed", /not deterministic/],
  ["acceptsBadAction", /outside Discrete\(3\) must throw a RangeError, it did not throw/],
  ["badActionTypeError", /must throw a RangeError, got TypeError/],
  ["closeTwiceThrows", /close\(\) must be safe to call twice/],
  ["badRender", /render\(\) must return/],
  ["stepObsWrongLength", /step 0 returned an observation Float32Array\[0, 0, 0\] that is not in Box/],
];

for (const [fault, message] of caught) {
  Deno.test(`checkEnv catches an env with fault "${fault}"`, () => {
    assert.throws(() => checkEnv(new Walk(fault)), (e: unknown) => {
      assert.ok(e instanceof Error);
      assert.match(e.message, /^checkEnv\(Walk\): /);
      assert.match(e.message, message);
      return true;
    });
  });
}

Deno.test("checkEnv's step-before-reset check can be skipped for an env that was already reset", () => {
  const env = new Walk();
  env.reset({ seed: 0 });
  checkEnv(env, { checkStepBeforeReset: false });
});

Deno.test("checkEnv names the env by its registered id in its messages", () => {
  const env = make("CartPole-v1");
  env.reset({ seed: 0 });
  // Already reset, so stepping does not throw and the step-before-reset check reports it.
  assert.throws(() => checkEnv(env), /^Error: checkEnv\(CartPole-v1\): step\(\) before reset\(\) must throw/);
});

/** An env with a Dict observation (screen + variables) and a MultiDiscrete action, like the native envs. */
class DictEnv extends Env<{ screen: Uint8Array; vars: Float32Array }, Int32Array> {
  readonly observationSpace = new Dict({
    screen: new Box(0, 255, { shape: [2, 2], dtype: "uint8" }) as Box<"uint8">,
    vars: new Box(-1, 1, { shape: [1] }) as Box<"float32">,
  });
  readonly actionSpace: MultiDiscrete = new MultiDiscrete([2, 3]);
  #obs = { screen: new Uint8Array(4), vars: new Float32Array(1) };
  #ready = false;
  reset(options: ResetOptions = {}): ResetResult<{ screen: Uint8Array; vars: Float32Array }> {
    this.seedFromReset(options);
    this.#ready = true;
    this.#obs.screen.fill(this.rng.integers(0, 256));
    this.#obs.vars[0] = 0;
    return [this.#obs, {}];
  }
  step(action: Int32Array): StepResult<{ screen: Uint8Array; vars: Float32Array }> {
    if (!this.#ready) throw new Error("DictEnv: call reset() before step()");
    this.actionSpace.assertContains(action, "action");
    this.#obs.screen.fill(this.rng.integers(0, 256));
    this.#obs.vars[0] = (action[1] - 1) / 2;
    return [this.#obs, action[0], false, false, {}];
  }
}

Deno.test("checkEnv handles Dict observations and MultiDiscrete actions", () => {
  checkEnv(new DictEnv());
});

Deno.test("the classic envs pass checkEnv when made by id", () => {
  for (const id of ["CartPole-v1", "MountainCar-v0", "Acrobot-v1", "Pendulum-v1"]) checkEnv(make(id));
});
