// Seeded random JSON values for differential tests (the same seed gives the same corpus on every run).

/** mulberry32: a small, fast 32-bit PRNG; returns floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed;
  return () => {
    a |= 0;
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface RandomJsonShape {
  readonly keys: readonly string[];
  readonly strings: readonly string[];
  readonly numbers: readonly number[];
  /** Cumulative odds of a string, a number, a literal (true/false/null) and an array; the rest are objects. */
  readonly odds: readonly [string: number, number: number, literal: number, array: number];
  /** Deeper than this, values are the string "leaf". */
  readonly maxDepth: number;
  /** Arrays get 0 to maxArray - 1 items, objects 0 to maxKeys - 1 keys. */
  readonly maxArray: number;
  readonly maxKeys: number;
}

export function randomValue(rand: () => number, shape: RandomJsonShape, depth: number): unknown {
  const r = rand();
  const [string, number, literal, array] = shape.odds;
  if (r < string) return shape.strings[Math.floor(rand() * shape.strings.length)];
  if (r < number) return shape.numbers[Math.floor(rand() * shape.numbers.length)];
  if (r < literal) return [true, false, null][Math.floor(rand() * 3)];
  if (depth > shape.maxDepth) return "leaf";
  if (r < array) return Array.from({ length: Math.floor(rand() * shape.maxArray) }, () => randomValue(rand, shape, depth + 1));
  return randomObject(rand, shape, depth + 1);
}

export function randomObject(rand: () => number, shape: RandomJsonShape, depth: number): Record<string, unknown> {
  const obj: Record<string, unknown> = {};
  const n = Math.floor(rand() * shape.maxKeys);
  for (let i = 0; i < n; i++) obj[shape.keys[Math.floor(rand() * shape.keys.length)]!] = randomValue(rand, shape, depth);
  return obj;
}
