// Guards parsed data against prototype pollution: JSON.parse turns a "__proto__" key into an own property, which is
// harmless until some later merge does `target[key] = …` with it. We drop such keys at the parser, once.

let budget = 0;

/**
 * Delete every own `__proto__` key in `value` and its nested objects and arrays, in place. Returns how many were
 * removed. The walk is bounded (`maxDepth`, `maxNodes`) so a cyclic or hugely shared object from user code cannot
 * make it loop or explode; whatever lies beyond the bound is left as it is.
 */
export function stripProtoKeys(value: object, maxDepth: number, maxNodes: number): number {
  budget = maxNodes;
  return walk(value, maxDepth);
}

function walk(value: object, depth: number): number {
  if (--budget < 0 || depth < 0) return 0;
  let removed = 0;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      if (typeof item === "object" && item !== null) removed += walk(item, depth - 1);
    }
    return removed;
  }
  if (Object.hasOwn(value, "__proto__")) {
    // `delete` removes the own property; it never touches the object's real prototype.
    delete (value as Record<string, unknown>)["__proto__"];
    removed++;
  }
  for (const key of Object.keys(value)) {
    const item = (value as Record<string, unknown>)[key];
    if (typeof item === "object" && item !== null) removed += walk(item, depth - 1);
  }
  return removed;
}
