/**
 * Named Doom envs with Sample Factory's names and settings (its `DOOM_ENVS` specs and scenario files): rendered at
 * 160x120, resized to 128x72 (nearest, as Sample Factory's ResizeWrapper does), CHW, frameskip 4, Sample Factory's
 * action spaces, reward scaling and gathering reward shaping.
 *
 * Importing this module registers the ids; `make("doom_basic")` needs `await ensureVizdoom()` once first.
 *
 * @module
 */

import { register } from "../registry.ts";
import { DoomEnv, type DoomEnvOptions } from "./doom_env.ts";
import { loadVizdoom } from "./ffi.ts";

/** One named Doom env: a Sample Factory scenario file and the options Sample Factory uses with it. */
export interface DoomSpec {
  /** Env id, e.g. `doom_basic`. */
  id: string;
  /** Scenario name in Sample Factory's scenario directory. */
  scenario: string;
  /** Options on top of `DOOM_TRAINING_DEFAULTS`. */
  options: DoomEnvOptions;
}

/**
 * What every named Doom env uses (Sample Factory's defaults for Doom training).
 *
 * @example
 * ```ts
 * import { DOOM_TRAINING_DEFAULTS } from "./specs.ts";
 * console.assert(DOOM_TRAINING_DEFAULTS.frameskip === 4);
 * ```
 */
export const DOOM_TRAINING_DEFAULTS: DoomEnvOptions = {
  resolution: "160X120",
  resize: [128, 72],
  interpolation: "nearest",
  layout: "CHW",
  frameskip: 4,
  screenFormat: "RGB24",
};

/**
 * Sample Factory's Doom specs (single-agent ones, `doom_deathmatch_bots` included; no self-play specs).
 *
 * @example
 * ```ts
 * import { DOOM_SPECS } from "./specs.ts";
 * console.log(DOOM_SPECS.map((s) => s.id).join(", "));
 * ```
 */
export const DOOM_SPECS: readonly DoomSpec[] = [
  // idle + one of MOVE_LEFT, MOVE_RIGHT, ATTACK
  { id: "doom_basic", scenario: "basic", options: { rewardScale: 0.01, episodeTimeout: 300 } },
  {
    id: "doom_two_colors_easy",
    scenario: "two_colors_easy",
    options: { actionSpace: { kind: "multi_discrete", groups: [3, 3] }, rewardShaping: "gathering" },
  },
  {
    id: "doom_two_colors_hard",
    scenario: "two_colors_hard",
    options: { actionSpace: { kind: "multi_discrete", groups: [3, 3] }, rewardShaping: "gathering" },
  },
  { id: "doom_health_gathering", scenario: "health_gathering", options: { rewardShaping: "gathering" } },
  // idle + one of TURN_LEFT, TURN_RIGHT, MOVE_FORWARD, MOVE_BACKWARD
  {
    id: "doom_health_gathering_supreme",
    scenario: "health_gathering_supreme",
    options: { rewardShaping: "gathering" },
  },
  // (noop, turn left, turn right) x (noop, attack)
  {
    id: "doom_defend_the_center",
    scenario: "defend_the_center",
    options: { actionSpace: { kind: "multi_discrete", groups: [3, 2] } },
  },
  {
    id: "doom_defend_the_line",
    scenario: "defend_the_line",
    options: { actionSpace: { kind: "multi_discrete", groups: [3, 2] } },
  },
  // (turn) x (forward/backward) x (strafe) x (attack)
  {
    id: "doom_deadly_corridor",
    scenario: "deadly_corridor",
    options: { actionSpace: { kind: "multi_discrete", groups: [3, 3, 3, 2] }, rewardScale: 0.01 },
  },
  {
    id: "doom_my_way_home",
    scenario: "my_way_home",
    options: { actionSpace: { kind: "multi_discrete", groups: [3, 3] } },
  },
  // (forward/backward) x (strafe) x (attack) x (sprint) x turning delta in 11 bins over [-10, 10]. Sample Factory
  // adds measurement inputs and battle reward shaping on top; here the game variables come in `info`.
  {
    id: "doom_battle",
    scenario: "battle_continuous_turning",
    options: {
      actionSpace: { kind: "multi_discrete", groups: [3, 3, 2, 2, { bins: 11, min: -10, max: 10 }] },
      episodeTimeout: 2100,
    },
  },
  // One agent against 7 bots. Buttons: (forward/backward) x (strafe) x (weapon 1-7) x (attack) x (sprint) x turning
  // delta in 21 bins over [-12.5, 12.5]. Sample Factory trains it with dense reward shaping and measurement inputs;
  // here the reward is the frag count (its "true objective") and the game variables come in `info`.
  {
    id: "doom_deathmatch_bots",
    scenario: "dwango5_dm_continuous_weap",
    options: {
      actionSpace: { kind: "multi_discrete", groups: [3, 3, 8, 2, 2, { bins: 21, min: -12.5, max: 12.5 }] },
      bots: 7,
      configOverrides: "frag_reward = 1",
    },
  },
  // The throughput benchmark env: battle with idle + one of its 8 buttons.
  { id: "doom_benchmark", scenario: "battle", options: { episodeTimeout: 2100 } },
];

for (const spec of DOOM_SPECS) {
  register({
    id: spec.id,
    kwargs: { ...DOOM_TRAINING_DEFAULTS, ...spec.options },
    create: (kwargs) => {
      const options = kwargs as DoomEnvOptions;
      const scenarioDir = options.scenarioDir ?? loadVizdoom().paths.sampleFactoryScenarios;
      return new DoomEnv(spec.scenario, { ...options, scenarioDir }) as never;
    },
  });
}
