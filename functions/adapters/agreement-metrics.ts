import type { AgreementReport } from '../core/agreement.js';
import type { MetricsRecorder } from './metrics.js';

/**
 * Records an agreement report (functions/core/agreement.ts) as counts that add up over requests
 * and batches: per member that answered, shadows included, `MemberRowsCompared`,
 * `MemberRowsAgreed` and `MemberAbsDiffSum` (dimensions ensemble, model, role counted|shadow);
 * per canary comparison, `CanaryRowsCompared`, `CanaryRowsAgreed` and `CanaryAbsDiffSum`
 * (dimensions ensemble, the primary, and canary). Rates are ratios of these sums, so no request
 * weighs more than its rows.
 */
export function addAgreement(metrics: MetricsRecorder, report: AgreementReport): void {
  for (const m of report.members) {
    const dims = { ensemble: m.ensemble, model: m.model, role: m.shadow ? 'shadow' : 'counted' };
    metrics
      .add('MemberRowsCompared', m.rows, dims)
      .add('MemberRowsAgreed', m.agreed, dims)
      .add('MemberAbsDiffSum', m.absDiffSum, dims);
  }
  const c = report.canary;
  if (c) {
    const dims = { ensemble: c.primary, canary: c.canary };
    metrics
      .add('CanaryRowsCompared', c.rows, dims)
      .add('CanaryRowsAgreed', c.agreed, dims)
      .add('CanaryAbsDiffSum', c.absDiffSum, dims);
  }
}
