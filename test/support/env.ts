// Keep test output readable: the handlers' structured logs are asserted on explicitly where needed.
process.env.POWERTOOLS_LOG_LEVEL ??= 'SILENT';
process.env.AWS_REGION ??= 'us-east-1';
process.env.AWS_ACCESS_KEY_ID ??= 'test';
process.env.AWS_SECRET_ACCESS_KEY ??= 'test';

// Handlers write CloudWatch EMF lines to stdout, as on Lambda; tests read them through
// test/support/emf.ts or the local stack's collector instead of printing them.
import { onEmfLines } from '../../local/observability/stdout-hook.js';

onEmfLines(() => {});
