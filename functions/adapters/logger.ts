import { Logger } from '@aws-lambda-powertools/logger';

/**
 * The one structured JSON logger. Log level comes from POWERTOOLS_LOG_LEVEL (tests set SILENT).
 * Feature values are never logged: only ids, ensembles, member statuses and latencies.
 */
export const logger = new Logger({ serviceName: 'fanout' });
