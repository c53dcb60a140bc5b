import { existsSync } from 'node:fs';
import { relative } from 'node:path';
import {
  ANSWER_MARGIN_MS,
  describeTimeoutCut,
  manifestTimeoutCuts,
  memberWaitLimits,
} from '../functions/core/targets.js';
import { loadServerlessConfig, type ServerlessConfig } from './serverless-config.js';

/** The runner's and the API function's timeouts in a serverless.yml (seconds), as a user reads it. */
export interface FunctionTimeouts {
  /** The file, as shown to the user. */
  file: string;
  runner: number;
  api?: number;
}

/** The two timeouts that bound a member's wait; undefined when there is no runner function. */
export function functionTimeoutsOf(config: ServerlessConfig): FunctionTimeouts | undefined {
  const runner = config.functions.find((f) => f.key === 'runner')?.timeoutSeconds;
  const api = config.functions.find((f) => f.key === 'api')?.timeoutSeconds;
  if (runner === undefined) return undefined;
  const file = relative(process.cwd(), config.file) || config.file;
  return { file, runner, ...(api === undefined ? {} : { api }) };
}

/** {@link functionTimeoutsOf} a file; undefined when it is missing or cannot be read. */
export function readFunctionTimeouts(file = 'serverless.yml'): FunctionTimeouts | undefined {
  if (!existsSync(file)) return undefined;
  try {
    return functionTimeoutsOf(loadServerlessConfig({ file }));
  } catch {
    return undefined;
  }
}

/**
 * One line per manifest model whose timeout the functions cannot give it, saying what it waits on
 * each path and which settings bound it: said at start and by `fanout models check`, so a user hears
 * it before a member times out. None when every timeout fits or the timeouts are unknown.
 */
export function manifestTimeoutNotes(
  models: Iterable<{ id: string; timeoutSeconds: number }>,
  timeouts: FunctionTimeouts | undefined,
): string[] {
  if (!timeouts) return [];
  const cuts = manifestTimeoutCuts(models, memberWaitLimits(timeouts.runner, timeouts.api));
  const api =
    timeouts.api === undefined
      ? ''
      : `; the synchronous path also by functions.api.timeout, ${timeouts.api}, less ${ANSWER_MARGIN_MS / 1000} to answer`;
  const bound = `bounded by functions.runner.timeout, ${timeouts.runner} in ${timeouts.file}, less one${api}`;
  return cuts.map((c) => `${describeTimeoutCut(c)} (${bound})`);
}
