import { logger } from '../adapters/logger.js';

/**
 * The API function's own logger. Each function has its own child so that, where several handlers
 * share one process (the local stack), a log line carries its own invocation's Lambda context.
 */
export const apiLogger = logger.createChild();
