import { isDistributedMap } from './distributed-map.js';
import type { Isolation } from './lambda-dispatch.js';
import { parsePerFunction } from './per-function.js';

/** A state of an ASL definition, loosely typed (definitions come from JSON). */
type State = Record<string, unknown>;

/**
 * The functions the Task states of ASL definitions invoke, each with whether it runs inside an
 * inline Map (once per item of the Map; a Distributed Map's children are executions of their own).
 */
export function taskFunctions(
  definitions: readonly Record<string, unknown>[],
  resolve: (ref: unknown) => string | undefined,
): { key: string; insideInlineMap: boolean }[] {
  const found: { key: string; insideInlineMap: boolean }[] = [];
  const walk = (def: unknown, insideInlineMap: boolean) => {
    const states = (def as { States?: Record<string, State> } | undefined)?.States;
    if (!states || typeof states !== 'object') return;
    for (const state of Object.values(states)) {
      if (state.Type === 'Task') {
        const params = state.Parameters as Record<string, unknown> | undefined;
        const key = resolve(params?.FunctionName ?? state.Resource);
        if (key) found.push({ key, insideInlineMap });
      } else if (state.Type === 'Map') {
        walk(state.ItemProcessor ?? state.Iterator, insideInlineMap || !isDistributedMap(state));
      } else if (state.Type === 'Parallel' && Array.isArray(state.Branches)) {
        for (const branch of state.Branches) walk(branch, insideInlineMap);
      }
    }
  };
  for (const definition of definitions) walk(definition, false);
  return found;
}

/**
 * The functions a state machine fans out to: those its inline Map states run for each item (the
 * member runners). They get worker-thread instances by default, so the members of one request
 * compute in parallel on different cores; the functions that orchestrate around them (API,
 * ensemble, batch steps) do little but wait on the emulators, and answer sooner in the stack's own
 * thread (see the README, "Instances and isolation").
 */
export function fanOutFunctions(
  definitions: readonly Record<string, unknown>[],
  resolve: (ref: unknown) => string | undefined,
): Set<string> {
  return new Set(
    taskFunctions(definitions, resolve)
      .filter((t) => t.insideInlineMap)
      .map((t) => t.key),
  );
}

/**
 * Reads FANOUT_LOCAL_ISOLATION: comma-separated `MODE` (every function) and `function=MODE`
 * (one function, by its serverless.yml key), MODE being `workers` or `in-process`, e.g.
 * `workers` or `in-process,runner=workers`. What it does not name keeps `byDefault`'s answer.
 * Errors name the entry.
 */
export function parseIsolation(
  spec: string | undefined,
  functionKeys: readonly string[],
  byDefault: (functionKey: string) => Isolation,
  variable = 'FANOUT_LOCAL_ISOLATION',
): (functionKey: string) => Isolation {
  const { all, each } = parsePerFunction(spec, functionKeys, variable, (mode, entry): Isolation => {
    if (mode !== 'workers' && mode !== 'in-process') {
      throw new Error(`${variable}: "${entry}" is not an isolation (workers or in-process)`);
    }
    return mode;
  });
  return (functionKey) => each.get(functionKey) ?? all ?? byDefault(functionKey);
}
