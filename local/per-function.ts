/**
 * Reads a per-function setting of the local stack: comma-separated `VALUE` (every function) and
 * `function=VALUE` (one function, by its serverless.yml key). `parseValue` checks a value and
 * throws naming the entry; an unknown function is refused here, naming the entry and the keys.
 */
export function parsePerFunction<T>(
  spec: string | undefined,
  functionKeys: readonly string[],
  variable: string,
  parseValue: (value: string, entry: string) => T,
): { all?: T; each: Map<string, T> } {
  let all: T | undefined;
  const each = new Map<string, T>();
  for (const raw of (spec ?? '').split(',')) {
    const entry = raw.trim();
    if (!entry) continue;
    const eq = entry.indexOf('=');
    const key = eq < 0 ? undefined : entry.slice(0, eq).trim();
    const value = parseValue((eq < 0 ? entry : entry.slice(eq + 1)).trim(), entry);
    if (key === undefined) all = value;
    else if (!functionKeys.includes(key)) {
      throw new Error(
        `${variable}: "${entry}" names no function of serverless.yml (${functionKeys.join(', ')})`,
      );
    } else each.set(key, value);
  }
  return all === undefined ? { each } : { all, each };
}
