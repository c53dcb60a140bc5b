import { QuorumNotMetError } from './errors.js';
import type { MemberOutcome } from './outcomes.js';

/** Result of a quorum check that passed. */
export interface QuorumResult {
  answered: MemberOutcome[];
  failed: MemberOutcome[];
  degraded: boolean;
}

/**
 * Splits outcomes into answered and failed members. Below `quorum` answers it throws a
 * QuorumNotMetError naming every failed member and why; with failures above it, `degraded`.
 */
export function checkQuorum(
  ensemble: string,
  outcomes: readonly MemberOutcome[],
  quorum: number,
): QuorumResult {
  const answered = outcomes.filter((o) => o.status === 'ok');
  const failed = outcomes.filter((o) => o.status !== 'ok');
  if (answered.length < quorum) {
    const list = failed.map((f) => `${f.model} (${f.status}: ${f.error?.message ?? 'no answer'})`).join('; ');
    throw new QuorumNotMetError(
      `ensemble "${ensemble}": ${answered.length} of ${outcomes.length} members answered, quorum is ${quorum}; failed: ${list}`,
      {
        details: {
          ensemble,
          quorum,
          answered: answered.map((a) => a.model),
          failed: failed.map((f) => ({
            model: f.model,
            status: f.status,
            ...(f.latencyMs === undefined ? {} : { latencyMs: f.latencyMs }),
            error: f.error,
          })),
        },
      },
    );
  }
  return { answered, failed, degraded: failed.length > 0 };
}
