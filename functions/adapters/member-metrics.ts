import type { MemberObservation } from '../core/outcomes.js';
import type { MetricsRecorder } from './metrics.js';

/**
 * Records each member's call of one prediction or batch: its latency (when measured), one of
 * MemberOk / MemberFailed / MemberTimedOut as 1 and the others as 0 (so each one's average is that
 * outcome's rate), and the rows it scored. Synchronous calls and batch calls keep separate latency
 * metrics: a 250-row batch would drown the one-row latencies a synchronous client sees.
 */
export function addMemberCalls(
  metrics: MetricsRecorder,
  ensemble: string,
  members: readonly MemberObservation[],
  path: 'sync' | 'batch',
): void {
  for (const m of members) {
    const dims = { ensemble, model: m.model };
    if (m.latencyMs !== undefined) {
      metrics.add(path === 'sync' ? 'MemberLatency' : 'MemberBatchLatency', m.latencyMs, dims);
    }
    metrics
      .add('MemberOk', m.status === 'ok' ? 1 : 0, dims)
      .add('MemberFailed', m.status === 'failed' ? 1 : 0, dims)
      .add('MemberTimedOut', m.status === 'timeout' ? 1 : 0, dims);
    if (m.rows > 0) metrics.add('MemberRows', m.rows, dims);
  }
}
