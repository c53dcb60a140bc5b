import type { Logger } from '@aws-lambda-powertools/logger';
import { type AgreementReport, agreementMetrics } from '../core/agreement.js';

/**
 * Where the ensemble and batch steps send agreement reports: the metric points of
 * agreementMetrics, written as one structured log line per request or batch. A failure here is
 * logged and swallowed: measuring agreement must never fail an answer that is already stored.
 */
export function agreementSink(logger: Logger): (report: AgreementReport) => void {
  return (report) => {
    try {
      logger.info('agreement', { points: agreementMetrics(report) });
    } catch (err) {
      logger.warn('agreement not recorded', { reason: (err as Error).message });
    }
  };
}
