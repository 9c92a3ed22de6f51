/**
 * Maps observations through a function (Gymnasium's `TransformObservation`).
 *
 * @module
 */

import type { Env } from "../core.ts";
import type { Space } from "../spaces.ts";
import { ObservationWrapper } from "./_base.ts";

/** Options of `TransformObservation`. */
export interface TransformObservationOptions<O> {
  /** The space of transformed observations; required unless `func` keeps them in the wrapped env's space. */
  observationSpace?: Space<O>;
}

/**
 * Applies `func` to every observation. Pass the new `observationSpace` when `func` changes shape, type or range.
 *
 * @example
 * ```ts
 * import { TransformObservation } from "./transform_observation.ts";
 * import { Box } from "../spaces.ts";
 * import { CartPoleEnv } from "../classic/cartpole.ts";
 *
 * // Keep only the pole angle and angular velocity.
 * const space = new Box(-Infinity, Infinity, { shape: [2] }) as Box<"float32">;
 * using env = new TransformObservation(new CartPoleEnv(), (obs: Float32Array) => obs.subarray(2), {
 *   observationSpace: space,
 * });
 * const [obs] = env.reset({ seed: 0 });
 * console.assert(env.observationSpace.contains(obs));
 * ```
 */
export class TransformObservation<O, A, WO> extends ObservationWrapper<O, A, WO> {
  readonly #func: (obs: WO) => O;
  readonly #space: Space<O>;

  constructor(env: Env<WO, A>, func: (obs: WO) => O, options: TransformObservationOptions<O> = {}) {
    super(env);
    this.#func = func;
    this.#space = options.observationSpace ?? (env.observationSpace as unknown as Space<O>);
  }

  override get observationSpace(): Space<O> {
    return this.#space;
  }

  observation(obs: WO): O {
    return this.#func(obs);
  }
}
