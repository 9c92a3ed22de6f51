/**
 * A tiny software rasterizer for the classic envs' `rgb_array` frames: filled convex polygons, circles and lines on
 * an RGB canvas. Coordinates are pygame's (x right, y down) and rows are flipped on write, as Gymnasium flips its
 * surface, so the math can be copied from Gymnasium's render code.
 *
 * @module
 */

import type { RgbFrame } from "../core.ts";

/** RGB colour. */
export type Rgb = readonly [number, number, number];

/**
 * Rotates `(x, y)` by `angle` radians as pygame's `Vector2.rotate_rad`, then translates by `(dx, dy)`.
 *
 * @example
 * ```ts
 * import { rotate } from "./_raster.ts";
 * const [x, y] = rotate(1, 0, Math.PI / 2, 10, 0);
 * console.assert(Math.abs(x - 10) < 1e-12 && Math.abs(y - 1) < 1e-12);
 * ```
 */
export function rotate(x: number, y: number, angle: number, dx = 0, dy = 0): [number, number] {
  const c = Math.cos(angle), s = Math.sin(angle);
  return [x * c - y * s + dx, x * s + y * c + dy];
}

/**
 * An RGB canvas whose `frame` is reused by every draw.
 *
 * @example
 * ```ts
 * import { Canvas } from "./_raster.ts";
 * const canvas = new Canvas(4, 3);
 * canvas.clear([255, 255, 255]);
 * canvas.polygon([[0, 0], [4, 0], [4, 1], [0, 1]], [0, 0, 0]);
 * console.assert(canvas.frame.data[(2 * 4) * 3] === 0); // pygame row 0 is the last row after the flip
 * ```
 */
export class Canvas {
  /** The frame (its `data` is overwritten by later draws). */
  readonly frame: RgbFrame;

  constructor(width: number, height: number) {
    this.frame = { data: new Uint8Array(width * height * 3), width, height };
  }

  /** Fills the whole canvas. */
  clear(color: Rgb): void {
    const d = this.frame.data;
    for (let i = 0; i < d.length; i += 3) d[i] = color[0], d[i + 1] = color[1], d[i + 2] = color[2];
  }

  /** Fills pixels `[x0, x1)` of pygame row `y`. */
  span(y: number, x0: number, x1: number, color: Rgb): void {
    const { data, width, height } = this.frame;
    if (y < 0 || y >= height) return;
    const a = Math.max(0, x0), b = Math.min(width, x1);
    let i = ((height - 1 - y) * width + a) * 3;
    for (let x = a; x < b; x++, i += 3) data[i] = color[0], data[i + 1] = color[1], data[i + 2] = color[2];
  }

  /** Fills a convex polygon (pixel centres inside it). */
  polygon(points: readonly (readonly [number, number])[], color: Rgb): void {
    let minY = Infinity, maxY = -Infinity;
    for (const [, y] of points) minY = Math.min(minY, y), maxY = Math.max(maxY, y);
    for (let y = Math.max(0, Math.floor(minY)); y <= Math.min(this.frame.height - 1, Math.ceil(maxY)); y++) {
      const cy = y + 0.5;
      let left = Infinity, right = -Infinity;
      for (let i = 0; i < points.length; i++) {
        const [x0, y0] = points[i], [x1, y1] = points[(i + 1) % points.length];
        if ((cy < y0) === (cy < y1)) continue; // edge does not cross this row
        const x = x0 + ((cy - y0) / (y1 - y0)) * (x1 - x0);
        left = Math.min(left, x), right = Math.max(right, x);
      }
      if (left <= right) this.span(y, Math.round(left), Math.round(right), color);
    }
  }

  /** Fills a circle of radius `r` around `(cx, cy)`. */
  circle(cx: number, cy: number, r: number, color: Rgb): void {
    for (let y = Math.floor(cy - r); y <= Math.ceil(cy + r); y++) {
      const dy = y + 0.5 - cy;
      if (Math.abs(dy) > r) continue;
      const dx = Math.sqrt(r * r - dy * dy);
      this.span(y, Math.round(cx - dx), Math.round(cx + dx), color);
    }
  }

  /** A line of the given width between two points (drawn as a thin polygon). */
  line(x0: number, y0: number, x1: number, y1: number, width: number, color: Rgb): void {
    const len = Math.hypot(x1 - x0, y1 - y0) || 1,
      nx = ((y0 - y1) / len) * width / 2,
      ny = ((x1 - x0) / len) * width / 2;
    this.polygon([[x0 + nx, y0 + ny], [x1 + nx, y1 + ny], [x1 - nx, y1 - ny], [x0 - nx, y0 - ny]], color);
  }
}
