/**
 * Env ids → constructors, like Gymnasium's `make` and `register`. Each env module registers its own ids when it is
 * imported; `envs/mod.ts` imports them all. No directory scanning, so imports by URL work.
 *
 * @module
 */

import type { Env, EnvSpec } from "./core.ts";
import { TimeLimit } from "./wrappers/time_limit.ts";

/** How to build a registered env. */
export interface EnvEntry extends Omit<EnvSpec, "kwargs"> {
  /** Builds the env from the merged keyword arguments. */
  create: (kwargs: Record<string, unknown>) => Env<unknown, unknown>;
  /** Default keyword arguments. */
  kwargs?: Record<string, unknown>;
}

/** Options of `make()`. */
export interface MakeOptions {
  /** Overrides the registered episode step limit (0 disables the TimeLimit wrapper). */
  maxEpisodeSteps?: number;
  /** Keyword arguments merged over the registered ones. */
  kwargs?: Record<string, unknown>;
}

const registry = new Map<string, EnvEntry>();

/**
 * Registers an env id. Registering an id twice throws.
 *
 * @example
 * ```ts
 * import { register, registered } from "./registry.ts";
 * import { CartPoleEnv } from "./classic/cartpole.ts";
 * register({ id: "MyCartPole-v0", create: () => new CartPoleEnv(), maxEpisodeSteps: 100 });
 * console.assert(registered().includes("MyCartPole-v0"));
 * ```
 */
export function register(entry: EnvEntry): void {
  if (registry.has(entry.id)) throw new Error(`register: env id "${entry.id}" is already registered`);
  registry.set(entry.id, entry);
}

/** All registered ids, sorted. */
export function registered(): string[] {
  return [...registry.keys()].sort();
}

/**
 * Builds a registered env, wrapped in a TimeLimit when its spec has `maxEpisodeSteps`.
 *
 * @example
 * ```ts
 * import { make } from "./mod.ts";
 * using env = make("CartPole-v1");
 * const [obs] = env.reset({ seed: 0 });
 * console.assert(obs instanceof Float32Array);
 * ```
 */
export function make(id: string, options: MakeOptions = {}): Env<unknown, unknown> {
  const entry = registry.get(id);
  if (!entry) {
    const close = closeMatches(id, registered());
    throw new Error(
      `make: no env registered as "${id}"` +
        (close.length ? `; did you mean ${close.map((c) => `"${c}"`).join(", ")}?` : "") +
        ` (registered: ${registered().length} ids, list them with registered())`,
    );
  }
  const kwargs = { ...entry.kwargs, ...options.kwargs };
  let env = entry.create(kwargs);
  const maxEpisodeSteps = options.maxEpisodeSteps ?? entry.maxEpisodeSteps;
  const spec: EnvSpec = { id, maxEpisodeSteps, rewardThreshold: entry.rewardThreshold, kwargs };
  env.spec = spec;
  if (maxEpisodeSteps && maxEpisodeSteps > 0) {
    env = new TimeLimit(env, { maxEpisodeSteps });
    env.spec = spec;
  }
  return env;
}

/** Candidates within a small edit distance (or sharing a prefix), best first; used by error messages. */
export function closeMatches(word: string, candidates: readonly string[], max = 3): string[] {
  const w = word.toLowerCase();
  return candidates
    .map((c) => ({ c, d: editDistance(w, c.toLowerCase()) }))
    .filter(({ c, d }) => d <= Math.max(2, Math.floor(w.length / 3)) || c.toLowerCase().includes(w))
    .sort((a, b) => a.d - b.d)
    .slice(0, max)
    .map(({ c }) => c);
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length];
}
