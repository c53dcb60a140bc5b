import { StateMachine } from 'aws-local-stepfunctions';

/** What aws-local-stepfunctions' `StateMachine.execute` receives, as far as the hooks touch it. */
export interface ExecuteOptions {
  runOptions?: { context?: Record<string, unknown> } & Record<string, unknown>;
  eventLogger: {
    dispatch(event: unknown): void;
    dispatchStateEnteredEvent(name: string, ...rest: unknown[]): unknown;
  };
}

/** Adjusts one execution's options before it runs; returns the options it should run with. */
export type ExecuteHook = (options: ExecuteOptions) => ExecuteOptions;

type Execute = (this: unknown, input: unknown, options: ExecuteOptions, cleanup: unknown) => unknown;

const hooks: ExecuteHook[] = [];

/**
 * Runs `hook` on the options of every execution (a Map iteration is one too). The local stack
 * changes more than one thing about an execution (see sfn-event-logs.ts, state-context.ts): they
 * share this one wrapper of `StateMachine.prototype.execute` rather than each wrapping the wrapper
 * before it, so there is one place that patches the library and one extra call per execution.
 */
export function onExecute(hook: ExecuteHook): void {
  if (hooks.length === 0) {
    const proto = StateMachine.prototype as unknown as { execute: Execute };
    const execute = proto.execute;
    proto.execute = function (this: unknown, input, options, cleanup) {
      let adjusted = options;
      for (const h of hooks) adjusted = h(adjusted);
      return execute.call(this, input, adjusted, cleanup);
    };
  }
  hooks.push(hook);
}
