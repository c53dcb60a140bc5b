import { type ExecuteOptions, onExecute } from './sfn-execute-hooks.js';

let applied = false;

/**
 * aws-local-stepfunctions logs every execution's events (execution started, each state entered
 * and exited, each Map iteration's events copied up to its parent) for a caller that iterates
 * `eventLogs`: each one an object, a DOM Event and an EventTarget dispatch, and for a Map iteration
 * an async generator step to copy it up; about sixty per inference execution. The local engine
 * answers from the execution's result and never reads them (Step Functions' execution history is
 * not emulated), so each execution's logger keeps nothing. The loggers still close when their
 * execution ends, which is what the Map's copying loops wait for.
 */
export function dropUnreadEventLogs(): void {
  if (applied) return;
  applied = true;
  onExecute((options: ExecuteOptions) => {
    options.eventLogger.dispatch = drop;
    return options;
  });
}

function drop(): void {}
