import { StateMachine } from 'aws-local-stepfunctions';

/** `$$.State` as Step Functions fills it in the context object. */
interface StateContext {
  Name: string;
  EnteredTime: string;
}

interface ExecuteOptions {
  runOptions?: { context?: Record<string, unknown> } & Record<string, unknown>;
  eventLogger: { dispatchStateEnteredEvent: (name: string, ...rest: unknown[]) => unknown };
}

type Execute = (this: unknown, input: unknown, options: ExecuteOptions, cleanup: unknown) => unknown;

let applied = false;

/**
 * aws-local-stepfunctions fills `$$.Execution`, `$$.StateMachine` and `$$.Map.Item` in the context
 * object but not `$$.State`, which the inference machine reads (`$$.State.EnteredTime`) to time a
 * member that failed. Each execution builds its context by spreading `runOptions.context` before
 * it runs its first state, and announces every state on its event logger just before running it:
 * so a `State` object placed in that context is shared by reference with the execution's own
 * context, and the logger's announcement keeps its `Name` and `EnteredTime` current, as on AWS.
 * A Map iteration is an execution of its own and gets its own `State`; the Map's ItemSelector is
 * evaluated in the parent's context, where `$$.State` is the Map state, as on AWS.
 */
export function provideStateContext(): void {
  if (applied) return;
  applied = true;
  const proto = StateMachine.prototype as unknown as { execute: Execute };
  const execute = proto.execute;
  proto.execute = function (this: unknown, input, options, cleanup) {
    const state: StateContext = { Name: '', EnteredTime: new Date().toISOString() };
    const logger = options.eventLogger;
    const announce = logger.dispatchStateEnteredEvent;
    logger.dispatchStateEnteredEvent = function (this: unknown, name, ...rest) {
      state.Name = name;
      state.EnteredTime = new Date().toISOString();
      return announce.call(this, name, ...rest);
    };
    const runOptions = options.runOptions ?? {};
    const withState: ExecuteOptions = {
      ...options,
      runOptions: { ...runOptions, context: { ...runOptions.context, State: state } },
    };
    return execute.call(this, input, withState, cleanup);
  };
}
