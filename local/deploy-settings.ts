import { existsSync } from 'node:fs';
import { relative } from 'node:path';
import {
  ANSWER_MARGIN_MS,
  describeTimeoutCut,
  manifestTimeoutCuts,
  memberWaitLimits,
} from '../functions/core/targets.js';
import { DEFAULT_DRIFT_RULE, type DriftRule } from './observability/dashboard-model.js';
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

/**
 * The drift alarm's rule as `custom.alarms` sets it; a default for a value the package step would
 * refuse (it names the setting there, and this only marks members on the local dashboard).
 */
export function driftRuleOf(config: ServerlessConfig): DriftRule {
  const min = Number(config.alarms.memberAgreementMin ?? DEFAULT_DRIFT_RULE.agreementMin);
  const rows = Number(config.alarms.memberAgreementMinRows ?? DEFAULT_DRIFT_RULE.minRows);
  const period = Number(config.alarms.agreementPeriodSeconds ?? DEFAULT_DRIFT_RULE.periodSeconds);
  return {
    agreementMin: min > 0 && min <= 1 ? min : DEFAULT_DRIFT_RULE.agreementMin,
    minRows: Number.isInteger(rows) && rows >= 1 ? rows : DEFAULT_DRIFT_RULE.minRows,
    periodSeconds:
      Number.isInteger(period) && period >= 60 && period % 60 === 0 && period * 3 <= 86_400
        ? period
        : DEFAULT_DRIFT_RULE.periodSeconds,
  };
}

/** What the model commands read of serverless.yml: the functions' timeouts and the drift threshold. */
export interface DeploySettings {
  /** Undefined without a runner function, or without a readable serverless.yml. */
  timeouts?: FunctionTimeouts;
  /**
   * The share of rows under which a counted member's agreement alarm fires
   * (`custom.alarms.memberAgreementMin`); the default when unset or a value the package step refuses.
   */
  agreementMin: number;
}

/**
 * Reads serverless.yml once for a command (every variable resolved, as the local stack reads it);
 * the defaults when the file is missing or cannot be read.
 */
export function readDeploySettings(file = 'serverless.yml'): DeploySettings {
  if (!existsSync(file)) return { agreementMin: DEFAULT_DRIFT_RULE.agreementMin };
  let config: ServerlessConfig;
  try {
    config = loadServerlessConfig({ file });
  } catch {
    return { agreementMin: DEFAULT_DRIFT_RULE.agreementMin };
  }
  const timeouts = functionTimeoutsOf(config);
  return { ...(timeouts ? { timeouts } : {}), agreementMin: driftRuleOf(config).agreementMin };
}

/**
 * What a batch job gives a member whose manifest timeout is `timeoutSeconds`: that, cut to what the
 * runner function can wait; the timeout itself when the functions' timeouts are unknown.
 */
export function batchWaitSeconds(timeoutSeconds: number, timeouts: FunctionTimeouts | undefined): number {
  return timeouts ? Math.min(timeoutSeconds, memberWaitLimits(timeouts.runner).batchSeconds) : timeoutSeconds;
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
