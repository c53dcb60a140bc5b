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
  JSONPathClass.prototype.evaluate = function (this: unknown, ...args: unknown[]) {
    const result = evaluate.apply(this, args);
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
  prototype: { evaluate: (this: unknown, ...args: unknown[]) => unknown };
};

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
