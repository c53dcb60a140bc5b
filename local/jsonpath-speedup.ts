import { JSONPath } from 'jsonpath-plus';

/**
 * aws-local-stepfunctions resolves every `"x.$": "$.path"` with jsonpath-plus, which returns a
 * scalar result by throwing and catching an Error subclass (`NewError`) internally. Building and
 * throwing that Error with a stack trace was about a third of the local Step Functions overhead
 * (~30 scalar paths per inference execution at ~10 µs each). Results are unchanged by what
 * follows; only that internal Error goes without a stack trace:
 *
 * - when `evaluate` is about to hand back a scalar, stack capture is switched off;
 * - NewError stores its result with `this.value = ...` and jsonpath-plus's own catch reads it
 *   back with `e.value`; an accessor for `value` on NewError.prototype switches capture back on
 *   at that read, synchronously, before any other code runs. A microtask restores it too in
 *   case no NewError follows (a direct `evaluate` call).
 *
 * Only the ESM copy of jsonpath-plus (the one aws-local-stepfunctions imports) is touched.
 *
 * Most of those paths are plain member chains (`$.instances`, `$.Map.Item.Value.model`), for which
 * jsonpath-plus still parses, traces and wraps each step in result objects; such a path is followed
 * here directly, with jsonpath-plus's own rule for a step (`val && Object.hasOwn(val, name)`), when
 * the call is the one aws-local-stepfunctions makes (`{path, json}` with `wrap: false`, values
 * only). Anything else goes through jsonpath-plus.
 */
export function speedUpScalarPaths(): void {
  if (applied) return;
  applied = true;
  const proto = newErrorPrototype();
  if (!proto) return;
  let saved: number | undefined;
  let fallbackQueued = false;
  const restore = () => {
    if (saved === undefined) return;
    Error.stackTraceLimit = saved;
    saved = undefined;
  };
  const fallback = () => {
    fallbackQueued = false;
    restore();
  };
  const stored = Symbol('value');
  Object.defineProperty(proto, 'value', {
    configurable: true,
    get(this: Record<symbol, unknown>) {
      restore();
      return this[stored];
    },
    set(this: Record<symbol, unknown>, value: unknown) {
      this[stored] = value;
    },
  });
  const evaluate = JSONPathClass.prototype.evaluate;
  JSONPathClass.prototype.evaluate = function (this: JSONPathInstance, ...args: unknown[]) {
    const direct = memberChain(this, args);
    const result = direct === NOT_A_CHAIN ? evaluate.apply(this, args) : direct;
    if ((result === null || typeof result !== 'object') && saved === undefined) {
      saved = Error.stackTraceLimit;
      Error.stackTraceLimit = 0;
      if (!fallbackQueued) {
        fallbackQueued = true;
        queueMicrotask(fallback);
      }
    }
    return result;
  };
}

// The published types describe the callable form only; the prototype is what the library uses.
const JSONPathClass = JSONPath as unknown as {
  new (options: object): unknown;
  prototype: { evaluate: (this: JSONPathInstance, ...args: unknown[]) => unknown };
};

/** The instance settings jsonpath-plus's evaluate reads when its argument does not override them. */
interface JSONPathInstance {
  wrap?: unknown;
  resultType?: unknown;
  flatten?: unknown;
  callback?: unknown;
}

const NOT_A_CHAIN = Symbol('not a member chain');
const CHAIN = /^\$(?:\.[A-Za-z_][A-Za-z0-9_]*)+$/;
const chains = new Map<string, string[] | undefined>();

/**
 * The value of `$.a.b...` in `json` as jsonpath-plus's evaluate answers it with `wrap: false` and
 * result type `value`: the value when every step exists (by own property), else undefined;
 * undefined for a falsy document too. NOT_A_CHAIN when the call or the path is anything else.
 */
function memberChain(self: JSONPathInstance, args: unknown[]): unknown {
  const request = args[0] as { path?: unknown; json?: unknown } | null;
  if (args.length !== 1 || request === null || typeof request !== 'object') return NOT_A_CHAIN;
  if (self.wrap !== false || self.resultType !== 'value' || self.flatten || self.callback) return NOT_A_CHAIN;
  for (const key in request) if (key !== 'path' && key !== 'json') return NOT_A_CHAIN;
  const path = request.path;
  if (typeof path !== 'string' || !Object.hasOwn(request, 'json')) return NOT_A_CHAIN;
  let steps = chains.get(path);
  if (steps === undefined && !chains.has(path)) {
    steps = CHAIN.test(path) ? path.slice(2).split('.') : undefined;
    if (chains.size < 10_000) chains.set(path, steps);
  }
  if (!steps) return NOT_A_CHAIN;
  let value = request.json;
  if (!value) return undefined;
  for (const step of steps) {
    if (!value || !Object.hasOwn(value as object, step)) return undefined;
    value = (value as Record<string, unknown>)[step];
  }
  return value;
}

let applied = false;

/** jsonpath-plus does not export NewError; a `new JSONPath(...)` with a scalar result throws one. */
function newErrorPrototype(): object | undefined {
  try {
    new JSONPathClass({ path: '$.a', json: { a: 1 }, wrap: false });
  } catch (err) {
    if ((err as { avoidNew?: unknown }).avoidNew === true) return Object.getPrototypeOf(err) as object;
  }
  return undefined;
}
