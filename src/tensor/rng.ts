/**
 * Randomness, seeded and reproducible.
 *
 * `uniformAt(seed, i)` is a counter-based hash: the i-th number of stream `seed` without any
 * state, so every backend (TypeScript, C, a future GPU kernel) draws the same dropout mask bit
 * for bit. `Rng` is a small sequential generator (xoshiro128**) for weight init and data sampling.
 */

/** Murmur3's 32-bit finaliser. Inputs and output are uint32. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** uint32 hash of (seed, index); index is taken modulo 2^32. C: fmix32(fmix32(seed ^ 0x5bd1e995) ^ (uint32)(i * 0x9E3779B9)). */
export function hashAt(seed: number, index: number): number {
  const s = fmix32((seed ^ 0x5bd1e995) >>> 0);
  return fmix32((s ^ Math.imul(index >>> 0, 0x9e3779b9)) >>> 0);
}

/** Uniform in [0, 1) with 24 bits, exactly representable in float32: (hash >>> 8) / 2^24. */
export function uniformAt(seed: number, index: number): number {
  return (hashAt(seed, index) >>> 8) / 16777216;
}

/** xoshiro128** seeded through splitmix32; deterministic across platforms. */
export class Rng {
  private s0: number; private s1: number; private s2: number; private s3: number;
  private spare: number | null = null;

  constructor(seed: number) {
    let x = seed >>> 0;
    const next = () => {
      x = (x + 0x9e3779b9) >>> 0;
      return fmix32(x);
    };
    this.s0 = next(); this.s1 = next(); this.s2 = next(); this.s3 = next();
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** Next uint32. */
  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = (this.s1 << 9) >>> 0;
    this.s2 ^= this.s0; this.s3 ^= this.s1; this.s1 ^= this.s2; this.s0 ^= this.s3;
    this.s2 ^= t; this.s3 = rotl(this.s3, 11);
    this.s0 >>>= 0; this.s1 >>>= 0; this.s2 >>>= 0; this.s3 >>>= 0;
    return result;
  }

  /** Uniform in [0, 1) with 53 bits. */
  uniform(): number {
    const hi = this.nextU32() >>> 5, lo = this.nextU32() >>> 6;
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.uniform() * n);
  }

  /** Standard normal (Box–Muller, caching the second value). */
  normal(): number {
    if (this.spare !== null) { const s = this.spare; this.spare = null; return s; }
    let u = 0;
    while (u === 0) u = this.uniform();
    const v = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** Fisher–Yates shuffle in place. */
  shuffle<T>(a: T[]): T[] {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [a[i], a[j]] = [a[j]!, a[i]!];
    }
    return a;
  }

  /** The generator's state, for exact resume. */
  state(): [number, number, number, number] { return [this.s0, this.s1, this.s2, this.s3]; }
  setState(s: readonly number[]): void {
    [this.s0, this.s1, this.s2, this.s3] = s.map((x) => x >>> 0) as [number, number, number, number];
    this.spare = null;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
