/**
 * Policy and value networks shared by the learners (PPO, A2C, APPO reuse the actor-critics; DQN the Q-networks):
 *
 * - `MlpActorCritic`: CleanRL `ppo.py`'s separate actor and critic MLPs (64-64 tanh, orthogonal init: hidden gain
 *   √2, policy head 0.01, value head 1) for vector observations.
 * - `NatureCnnActorCritic`: CleanRL `ppo_atari.py`'s Nature CNN trunk (Mnih et al. 2015) shared by both heads, over
 *   `[C, 84, 84]` frames scaled by 1/255 inside the network.
 * - `MlpQNetwork` and `NatureCnnQNetwork`: CleanRL `dqn.py`/`dqn_atari.py` Q-networks, optionally dueling.
 *
 * Every network takes observations as a flat batch (`Float32Array` or `Uint8Array`, `[B, ...obsShape]`) through
 * `act`, which picks actions without recording a graph; learners call `forward` on tensors for the losses.
 *
 * @module
 */

import {
  add,
  Conv2d,
  Flatten,
  Linear,
  mean,
  Module,
  mul,
  noGrad,
  ReLU,
  type Rng,
  Sequential,
  sub,
  Tanh,
  Tensor,
} from "../models/mod.ts";
import { argmaxRows, sampleCategorical, type TrainRng } from "./_training.ts";

/** Observations as vector envs deliver them: flat rows of `obsSize` values. */
export type ObsBatch = Float32Array | Uint8Array;

/** How `act` picks actions. */
export interface ActOptions {
  /** Take the most likely (greedy) action instead of sampling. */
  deterministic: boolean;
  /** Generator for sampling (required unless `deterministic`). */
  rng?: TrainRng;
}

/** Anything that maps a batch of observations to discrete actions (what `evaluate` needs). */
export interface Policy {
  /** Shape of one observation. */
  readonly obsShape: readonly number[];
  /** Number of discrete actions. */
  readonly numActions: number;
  /** Write one action per observation row of `obs` into `out` (length = batch size) and return it. */
  act(obs: ObsBatch, out: Int32Array, options: ActOptions): Int32Array;
}

/** An actor-critic: action logits and state values from one batch. */
export interface ActorCritic extends Policy, Module {
  /** `logits` `[B, numActions]` and `value` `[B]` for observations `[B, ...obsShape]`. */
  forward(obs: Tensor): { logits: Tensor; value: Tensor };
  /** Values `[B]` only (bootstrap values; skips the actor where it is separate). */
  value(obs: Tensor): Tensor;
}

/** A Q-network: action values `[B, numActions]`. */
export interface QNetwork extends Policy, Module {
  forward(obs: Tensor): Tensor;
}

/** Network construction options. */
export interface NetworkOptions {
  /** Generator for the initial weights. */
  rng: Rng;
}

function size(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/**
 * Wrap a flat observation batch as a float tensor `[B, ...obsShape]`: float32 input is used without copying, uint8
 * input is converted into `scratch` (grown as needed) so acting allocates only when the batch grows.
 */
export function obsTensor(obs: ObsBatch, obsShape: readonly number[], scratch?: { buf: Float32Array }): Tensor {
  const per = size(obsShape);
  const batch = obs.length / per;
  if (!Number.isInteger(batch)) {
    throw new RangeError(`observation batch of ${obs.length} values is not a multiple of [${obsShape.join(",")}]`);
  }
  let data: Float32Array;
  if (obs instanceof Float32Array) data = obs;
  else if (scratch) {
    if (scratch.buf.length !== obs.length) scratch.buf = new Float32Array(obs.length);
    data = scratch.buf;
    data.set(obs);
  } else data = Float32Array.from(obs);
  return new Tensor(data, [batch, ...obsShape]);
}

function mlp(sizes: number[], activation: "tanh" | "relu", gain: number, headGain: number, rng: Rng): Sequential {
  const layers = [];
  for (let i = 0; i < sizes.length - 1; i++) {
    const last = i === sizes.length - 2;
    layers.push(new Linear(sizes[i], sizes[i + 1], { rng, orthogonalGain: last ? headGain : gain, biasInit: 0 }));
    if (!last) layers.push(activation === "tanh" ? new Tanh() : new ReLU());
  }
  return new Sequential(layers);
}

/** Options of `MlpActorCritic`. */
export interface MlpActorCriticOptions extends NetworkOptions {
  /** Hidden layer sizes of both the actor and the critic (CleanRL: `[64, 64]`). */
  hidden?: number[];
}

/**
 * CleanRL `ppo.py`'s agent: separate actor and critic MLPs with tanh and orthogonal init.
 *
 * @example
 * ```ts
 * import { MlpActorCritic } from "./policies.ts";
 * import { TrainRng } from "./_training.ts";
 * import { Rng } from "../models/mod.ts";
 * const net = new MlpActorCritic([4], 2, { rng: new Rng(0) });
 * const actions = net.act(new Float32Array(8), new Int32Array(2), { deterministic: false, rng: new TrainRng(0) });
 * ```
 */
export class MlpActorCritic extends Module implements ActorCritic {
  readonly actor: Sequential;
  readonly critic: Sequential;
  readonly #scratch = { buf: new Float32Array(0) };

  constructor(readonly obsShape: readonly number[], readonly numActions: number, options: MlpActorCriticOptions) {
    super();
    const hidden = options.hidden ?? [64, 64];
    const inSize = size(obsShape);
    this.critic = this.registerModule("critic", mlp([inSize, ...hidden, 1], "tanh", Math.SQRT2, 1, options.rng));
    this.actor = this.registerModule(
      "actor",
      mlp([inSize, ...hidden, numActions], "tanh", Math.SQRT2, 0.01, options.rng),
    );
  }

  forward(obs: Tensor): { logits: Tensor; value: Tensor } {
    const x = obs.reshape([obs.shape[0], -1]);
    return { logits: this.actor.forward(x), value: this.critic.forward(x).reshape([obs.shape[0]]) };
  }

  value(obs: Tensor): Tensor {
    return this.critic.forward(obs.reshape([obs.shape[0], -1])).reshape([obs.shape[0]]);
  }

  act(obs: ObsBatch, out: Int32Array, options: ActOptions): Int32Array {
    const logits = noGrad(() => this.actor.forward(obsTensor(obs, [size(this.obsShape)], this.#scratch)));
    return pickFromLogits(logits.data, this.numActions, out, options);
  }
}

function pickFromLogits(logits: Float32Array, n: number, out: Int32Array, options: ActOptions): Int32Array {
  if (options.deterministic) return argmaxRows(logits, n, out);
  if (!options.rng) throw new Error("act: pass options.rng to sample actions (or deterministic: true)");
  return sampleCategorical(logits, n, options.rng, out);
}

/** The Nature CNN trunk: 3 convolutions and a 512-unit layer, ReLU, orthogonal init with gain √2. */
function natureTrunk(obsShape: readonly number[], rng: Rng): { trunk: Sequential; features: number } {
  if (obsShape.length !== 3) {
    throw new RangeError(`Nature CNN needs [channels, height, width] observations, got [${obsShape.join(",")}]`);
  }
  const [c, h, w] = obsShape;
  const out = (n: number, k: number, s: number) => Math.floor((n - k) / s) + 1;
  const oh = out(out(out(h, 8, 4), 4, 2), 3, 1), ow = out(out(out(w, 8, 4), 4, 2), 3, 1);
  if (oh < 1 || ow < 1) throw new RangeError(`Nature CNN: frames of ${h}x${w} are too small (need at least 36x36)`);
  const g = { rng, orthogonalGain: Math.SQRT2, biasInit: 0 };
  const trunk = new Sequential([
    new Conv2d(c, 32, 8, { ...g, stride: 4 }),
    new ReLU(),
    new Conv2d(32, 64, 4, { ...g, stride: 2 }),
    new ReLU(),
    new Conv2d(64, 64, 3, { ...g, stride: 1 }),
    new ReLU(),
    new Flatten(),
    new Linear(64 * oh * ow, 512, g),
    new ReLU(),
  ]);
  return { trunk, features: 512 };
}

/**
 * CleanRL `ppo_atari.py`'s agent: the Nature CNN shared by a policy head (gain 0.01) and a value head (gain 1).
 * Observations are raw pixel values 0..255 (`[B, C, H, W]`); the network scales them by 1/255.
 */
export class NatureCnnActorCritic extends Module implements ActorCritic {
  readonly network: Sequential;
  readonly actorHead: Linear;
  readonly criticHead: Linear;
  readonly #scratch = { buf: new Float32Array(0) };

  constructor(readonly obsShape: readonly number[], readonly numActions: number, options: NetworkOptions) {
    super();
    const { trunk, features } = natureTrunk(obsShape, options.rng);
    this.network = this.registerModule("network", trunk);
    this.actorHead = this.registerModule(
      "actor",
      new Linear(features, numActions, { rng: options.rng, orthogonalGain: 0.01, biasInit: 0 }),
    );
    this.criticHead = this.registerModule(
      "critic",
      new Linear(features, 1, { rng: options.rng, orthogonalGain: 1, biasInit: 0 }),
    );
  }

  forward(obs: Tensor): { logits: Tensor; value: Tensor } {
    const hidden = this.network.forward(mul(obs, 1 / 255));
    return { logits: this.actorHead.forward(hidden), value: this.criticHead.forward(hidden).reshape([obs.shape[0]]) };
  }

  value(obs: Tensor): Tensor {
    return this.criticHead.forward(this.network.forward(mul(obs, 1 / 255))).reshape([obs.shape[0]]);
  }

  act(obs: ObsBatch, out: Int32Array, options: ActOptions): Int32Array {
    const logits = noGrad(() =>
      this.actorHead.forward(this.network.forward(mul(obsTensor(obs, this.obsShape, this.#scratch), 1 / 255)))
    );
    return pickFromLogits(logits.data, this.numActions, out, options);
  }
}

/** Q-network options. */
export interface QNetworkOptions extends NetworkOptions {
  /** Dueling head (Wang et al. 2016): `Q = V + A − mean(A)`. */
  dueling?: boolean;
  /** Hidden sizes of the MLP (CleanRL `dqn.py`: `[120, 84]`); ignored by the CNN. */
  hidden?: number[];
  /** ε of the random action taken by `act` when not deterministic (evaluation ε, CleanRL: 0.05). */
  actEpsilon?: number;
}

/** Dueling combination `V + A − mean(A)` over `[B, n]` advantages and `[B, 1]` values. */
function duelingQ(value: Tensor, advantage: Tensor): Tensor {
  return add(value, sub(advantage, mean(advantage, { axis: 1, keepdim: true })));
}

function qAct(
  q: QNetwork,
  obs: ObsBatch,
  out: Int32Array,
  options: ActOptions,
  epsilon: number,
  scratch: { buf: Float32Array },
): Int32Array {
  const values = noGrad(() => q.forward(obsTensor(obs, q.obsShape, scratch)));
  argmaxRows(values.data, q.numActions, out);
  if (!options.deterministic && epsilon > 0) {
    if (!options.rng) throw new Error("act: pass options.rng for ε-greedy actions (or deterministic: true)");
    for (let i = 0; i < out.length; i++) if (options.rng.uniform() < epsilon) out[i] = options.rng.int(q.numActions);
  }
  return out;
}

/**
 * CleanRL `dqn.py`'s Q-network (MLP, ReLU, PyTorch default init), optionally dueling.
 *
 * @example
 * ```ts
 * import { MlpQNetwork } from "./policies.ts";
 * import { Rng } from "../models/mod.ts";
 * const q = new MlpQNetwork([4], 2, { rng: new Rng(0), dueling: true });
 * const greedy = q.act(new Float32Array(4), new Int32Array(1), { deterministic: true });
 * ```
 */
export class MlpQNetwork extends Module implements QNetwork {
  readonly body: Sequential;
  readonly head: Linear;
  readonly valueHead: Linear | null;
  readonly #epsilon: number;
  readonly #scratch = { buf: new Float32Array(0) };

  constructor(readonly obsShape: readonly number[], readonly numActions: number, options: QNetworkOptions) {
    super();
    const hidden = options.hidden ?? [120, 84];
    const sizes = [size(obsShape), ...hidden];
    const layers = [];
    for (let i = 0; i < sizes.length - 1; i++) {
      layers.push(new Linear(sizes[i], sizes[i + 1], { rng: options.rng }), new ReLU());
    }
    const last = sizes[sizes.length - 1];
    this.body = this.registerModule("body", new Sequential(layers));
    this.head = this.registerModule("head", new Linear(last, numActions, { rng: options.rng }));
    this.valueHead = options.dueling ? this.registerModule("value", new Linear(last, 1, { rng: options.rng })) : null;
    this.#epsilon = options.actEpsilon ?? 0.05;
  }

  forward(obs: Tensor): Tensor {
    const h = this.body.forward(obs.reshape([obs.shape[0], -1]));
    const a = this.head.forward(h);
    return this.valueHead ? duelingQ(this.valueHead.forward(h), a) : a;
  }

  act(obs: ObsBatch, out: Int32Array, options: ActOptions): Int32Array {
    return qAct(this, obs, out, options, this.#epsilon, this.#scratch);
  }
}

/** CleanRL `dqn_atari.py`'s Q-network: Nature CNN + linear head (or dueling heads), input scaled by 1/255. */
export class NatureCnnQNetwork extends Module implements QNetwork {
  readonly network: Sequential;
  readonly head: Linear;
  readonly valueHead: Linear | null;
  readonly #epsilon: number;
  readonly #scratch = { buf: new Float32Array(0) };

  constructor(readonly obsShape: readonly number[], readonly numActions: number, options: QNetworkOptions) {
    super();
    const { trunk, features } = natureTrunk(obsShape, options.rng);
    this.network = this.registerModule("network", trunk);
    this.head = this.registerModule("head", new Linear(features, numActions, { rng: options.rng }));
    this.valueHead = options.dueling
      ? this.registerModule("value", new Linear(features, 1, { rng: options.rng }))
      : null;
    this.#epsilon = options.actEpsilon ?? 0.05;
  }

  forward(obs: Tensor): Tensor {
    const h = this.network.forward(mul(obs, 1 / 255));
    const a = this.head.forward(h);
    return this.valueHead ? duelingQ(this.valueHead.forward(h), a) : a;
  }

  act(obs: ObsBatch, out: Int32Array, options: ActOptions): Int32Array {
    return qAct(this, obs, out, options, this.#epsilon, this.#scratch);
  }
}
