import { AslBindingError, type StateBinder, type TaskHandler } from './asl-bindings.js';
import type { LambdaDispatcher } from './lambda-dispatch.js';

const LAMBDA_INVOKE = 'arn:aws:states:::lambda:invoke';

/** What the binder needs from a dispatcher (tests may pass a smaller fake). */
export type FunctionInvoker = Pick<LambdaDispatcher, 'resolve' | 'invoke' | 'keys'>;

/**
 * Binds Lambda Task states to in-process invocations: the optimised integration
 * `arn:aws:states:::lambda:invoke` (answering `{StatusCode, Payload, ExecutedVersion}` as AWS does,
 * so `OutputPath: $.Payload` works) and a bare function ARN as Resource (answering the result).
 * The function is resolved once, when the definition is loaded; a dynamic `FunctionName.$` is
 * resolved per call.
 */
export function lambdaBinder(invoker: FunctionInvoker): StateBinder {
  const known = () => invoker.keys().join(', ');
  return {
    bind(state, name, where) {
      if (state.Type !== 'Task' || typeof state.Resource !== 'string') return undefined;
      if (state.Resource === LAMBDA_INVOKE) {
        const params = (state.Parameters ?? {}) as Record<string, unknown>;
        if ('FunctionName' in params) {
          const key = invoker.resolve(params.FunctionName);
          if (!key) {
            throw new AslBindingError(
              `${where}.Parameters.FunctionName: ${JSON.stringify(params.FunctionName)} names no function of serverless.yml (${known()})`,
            );
          }
          return { handler: invokeTask(invoker, () => key) };
        }
        if ('FunctionName.$' in params) {
          return {
            handler: invokeTask(invoker, (ref) => {
              const key = invoker.resolve(ref);
              if (!key) throw lambdaNotFound(ref);
              return key;
            }),
          };
        }
        throw new AslBindingError(`${where}.Parameters: lambda:invoke needs FunctionName (state ${name})`);
      }
      if (/^arn:aws[\w-]*:lambda:/.test(state.Resource)) {
        const key = invoker.resolve(state.Resource);
        if (!key)
          throw new AslBindingError(`${where}.Resource: ${state.Resource} names no function (${known()})`);
        return { handler: (input) => invoker.invoke(key, input) };
      }
      return undefined;
    },
  };
}

function invokeTask(invoker: FunctionInvoker, keyOf: (ref: unknown) => string): TaskHandler {
  return async (input) => {
    const params = (input ?? {}) as { FunctionName?: unknown; Payload?: unknown };
    const payload = await invoker.invoke(keyOf(params.FunctionName), params.Payload ?? {});
    return { ExecutedVersion: '$LATEST', Payload: payload, StatusCode: 200 };
  };
}

function lambdaNotFound(ref: unknown): Error {
  const err = new Error(`Function not found: ${JSON.stringify(ref)}`);
  err.name = 'Lambda.ResourceNotFoundException';
  return err;
}
