/**
 * Classic-control envs in pure TypeScript, Gymnasium 1.x dynamics. Importing this module registers their ids
 * (`CartPole-v1`, `MountainCar-v0`, `Acrobot-v1`, `Pendulum-v1`).
 *
 * @module
 */

export * from "./cartpole.ts";
export * from "./mountain_car.ts";
export * from "./acrobot.ts";
export * from "./pendulum.ts";
