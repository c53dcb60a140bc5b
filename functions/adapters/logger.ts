import { Logger } from '@aws-lambda-powertools/logger';

/**
 * The one structured JSON logger. Log level comes from POWERTOOLS_LOG_LEVEL (tests set SILENT).
 * Feature values are never logged: only ids, ensembles, member statuses and latencies.
 */
export const logger = new Logger({ serviceName: 'fanout' });

/**
 * An error as a log field: `{name, message, code?}` under the key `error`. Powertools reserves
 * `message` (and `level`, `timestamp`, ...) for its own fields and drops an extra field with such
 * a name, so a failure's reason must never be passed as `message`.
 */
export function errorFields(err: unknown): { name: string; message: string; code?: string } {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return { name: err.name, message: err.message, ...(typeof code === 'string' ? { code } : {}) };
  }
  return { name: 'Error', message: typeof err === 'string' ? err : (JSON.stringify(err) ?? String(err)) };
}
