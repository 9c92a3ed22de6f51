/**
 * A size-keyed pool of scratch `Float32Array`s (im2col columns, intermediate gradients, backward temporaries).
 * Reusing them avoids re-zeroing fresh pages and the major GCs that multi-megabyte allocations trigger every step.
 * Only buffers whose lifetime the library controls go through here; tensors handed to users are never pooled.
 *
 * @module
 */

const MIN_POOLED = 1024; // elements; smaller arrays are cheap to allocate
const MAX_POOLED_BYTES = 512 * 1024 * 1024;

const free = new Map<number, Float32Array[]>();
let pooledBytes = 0;

/**
 * A buffer of exactly `n` elements; zeroed when `zero` is true, else contents are arbitrary. A recycled buffer is
 * zeroed by `zeroFn` when given (a device backend zeroes its device copy), else on the host.
 */
export function takeBuffer(n: number, zero: boolean, zeroFn?: (b: Float32Array) => void): Float32Array {
  if (n >= MIN_POOLED) {
    const list = free.get(n);
    const b = list?.pop();
    if (b) {
      pooledBytes -= b.byteLength;
      if (zero) {
        if (zeroFn) zeroFn(b);
        else b.fill(0);
      }
      return b;
    }
  }
  return new Float32Array(n);
}

/** Return a buffer obtained from `takeBuffer`; the caller must not use it afterwards. */
export function releaseBuffer(b: Float32Array): void {
  if (b.length < MIN_POOLED || b.byteOffset !== 0 || b.length * 4 !== b.buffer.byteLength) return;
  if (pooledBytes + b.byteLength > MAX_POOLED_BYTES) return;
  let list = free.get(b.length);
  if (!list) free.set(b.length, list = []);
  list.push(b);
  pooledBytes += b.byteLength;
}

/** Drop every pooled buffer (e.g. after changing batch size for good). */
export function clearBufferPool(): void {
  free.clear();
  pooledBytes = 0;
}
