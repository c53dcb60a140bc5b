import { existsSync } from 'node:fs';
import { ANSWER_MARGIN_MS, memberBudgetSeconds } from '../functions/api/predict.js';
import { runnerMemberLimit } from '../functions/core/targets.js';
import { loadServerlessConfig } from '../local/serverless-config.js';

/**
 * What `fanout models add --timeout` should tell its user when the timeout is longer than the
 * functions let a member wait (serverless.yml's runner and API timeouts): the member is cut to
 * that at run time, so the user hears it now rather than from a log. Undefined when it fits, or
 * when there is no readable serverless.yml to compare with.
 */
export function timeoutNote(seconds: number | undefined, file = 'serverless.yml'): string | undefined {
  if (seconds === undefined || !existsSync(file)) return undefined;
  let runner: number | undefined;
  let api: number | undefined;
  try {
    const functions = loadServerlessConfig({ file }).functions;
    runner = functions.find((f) => f.key === 'runner')?.timeoutSeconds;
    api = functions.find((f) => f.key === 'api')?.timeoutSeconds;
  } catch {
    return undefined;
  }
  if (runner === undefined) return undefined;
  const limit = runnerMemberLimit(runner);
  if (seconds <= limit) return undefined;
  const sync =
    api === undefined
      ? ''
      : ` and about ${memberBudgetSeconds(api * 1000, runner)} s on the synchronous path (the api function's ${api} s, less ${ANSWER_MARGIN_MS / 1000} to answer)`;
  return (
    `note: --timeout ${seconds} is longer than the runner can wait: the member waits at most ${limit} s ` +
    `(functions.runner.timeout is ${runner} in ${file}, less one)${sync}; past that it is timed out by ` +
    'name. Raise functions.runner.timeout to let it wait longer.'
  );
}
