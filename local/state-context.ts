import { type ExecuteOptions, onExecute } from './sfn-execute-hooks.js';

/** `$$.State` as Step Functions fills it in the context object. */
interface StateContext {
  Name: string;
  EnteredTime: string;
}

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
  onExecute((options: ExecuteOptions) => {
    const state: StateContext = { Name: '', EnteredTime: new Date().toISOString() };
    const logger = options.eventLogger;
    const announce = logger.dispatchStateEnteredEvent;
    logger.dispatchStateEnteredEvent = function (this: unknown, name, ...rest) {
      state.Name = name;
      state.EnteredTime = new Date().toISOString();
      return announce.call(this, name, ...rest);
    };
    const runOptions = options.runOptions ?? {};
    return { ...options, runOptions: { ...runOptions, context: { ...runOptions.context, State: state } } };
  });
}
