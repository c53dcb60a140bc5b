import { describe } from './instances.js';
import { firstDistributionProblem, PROBABILITIES_HINT } from './probabilities.js';

export type MemberStatus = 'ok' | 'failed' | 'timeout';

/** Why a member did not answer: the error's name and a message that names the member. */
export interface MemberError {
  name: string;
  message: string;
}

/** What one member produced for a request, as the ensemble step receives it. */
export interface MemberOutcome {
  model: string;
  status: MemberStatus;
  version?: string;
  kind?: 'onnx' | 'sagemaker';
  latencyMs?: number;
  probabilities?: number[][];
  error?: MemberError;
}

/**
 * Normalises one entry of the state machine's member results. A runner success is passed through;
 * a caught failure arrives as `{model, status, error: {Error, Cause}, startedAt, endedAt}` where Cause is, for a
 * Lambda error, a JSON string `{errorType, errorMessage, trace}`. The trace is dropped: it must
 * never reach a client. A timeout also carries the `timeoutSeconds` its state had, which its
 * message gives, with `manifestTimeout` (the manifest's, by model) saying whether it was cut.
 */
export function normaliseOutcome(
  raw: unknown,
  fallbackModel = 'unknown',
  manifestTimeout?: (model: string) => number | undefined,
): MemberOutcome {
  if (raw === null || typeof raw !== 'object') {
    return {
      model: fallbackModel,
      status: 'failed',
      error: { name: 'InvalidMemberResult', message: `${fallbackModel}: result was ${describe(raw)}` },
    };
  }
  const r = raw as Record<string, unknown>;
  const model = typeof r.model === 'string' ? r.model : fallbackModel;
  const status: MemberStatus = r.status === 'ok' || r.status === 'timeout' ? r.status : 'failed';
  const out: MemberOutcome = { model, status };
  if (typeof r.version === 'string') out.version = r.version;
  if (r.kind === 'onnx' || r.kind === 'sagemaker') out.kind = r.kind;
  if (typeof r.latencyMs === 'number') out.latencyMs = r.latencyMs;
  else if (status !== 'ok') {
    const took = elapsedMs(r.startedAt, r.endedAt);
    if (took !== undefined) out.latencyMs = took;
  }
  if (status === 'ok') {
    out.probabilities = r.probabilities as number[][];
    return out;
  }
  const waited = status === 'timeout' ? positiveSeconds(r.timeoutSeconds) : undefined;
  out.error = toMemberError(
    model,
    status,
    r.error,
    waited === undefined ? undefined : timedOut(waited, manifestTimeout?.(model)),
  );
  return out;
}

const positiveSeconds = (v: unknown): number | undefined =>
  typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : undefined;

/**
 * What a timed-out member says when the state machine passed on the timeout its state had
 * (`timeoutSeconds`): how long it was given and, when that is less than its manifest timeout,
 * that the timeout was cut to what its caller could wait (see targets.ts). Someone paged for a
 * timing-out member then knows which figure to raise.
 */
export function timedOut(waitedSeconds: number, manifestSeconds?: number): string {
  if (manifestSeconds !== undefined && manifestSeconds > waitedSeconds) {
    return (
      `did not answer within ${waitedSeconds} s, the most its caller could wait ` +
      `(its manifest timeout, ${manifestSeconds} s, was cut to that)`
    );
  }
  return `did not answer within its ${waitedSeconds} s timeout`;
}

const TIMED_OUT = 'did not answer within its timeout';

/**
 * A caught member carries no latency of its own: the state machine stamps the time the fan-out
 * started and the time the failure was caught (`$$.State.EnteredTime`, millisecond ISO strings),
 * so the member reports how long it took to fail, retries included.
 */
function elapsedMs(startedAt: unknown, endedAt: unknown): number | undefined {
  if (typeof startedAt !== 'string' || typeof endedAt !== 'string') return undefined;
  const ms = Date.parse(endedAt) - Date.parse(startedAt);
  return Number.isFinite(ms) && ms >= 0 ? ms : undefined;
}

/** `timedOutText`, for a timeout whose length is known, leads the message; a cause follows it. */
function toMemberError(
  model: string,
  status: MemberStatus,
  raw: unknown,
  timedOutText?: string,
): MemberError {
  const e = (raw ?? {}) as Record<string, unknown>;
  const name = typeof e.Error === 'string' ? e.Error : typeof e.name === 'string' ? e.name : 'Error';
  let message = typeof e.message === 'string' ? e.message : '';
  if (typeof e.Cause === 'string') message = causeMessage(e.Cause);
  if (timedOutText) {
    const cause = message.startsWith(`${model}: `) ? message.slice(model.length + 2) : message;
    // A cause that only repeats the error's name (the local interpreter's) says nothing more.
    message = cause && cause !== name ? `${timedOutText}: ${cause}` : timedOutText;
  }
  if (status === 'timeout' && !message) message = TIMED_OUT;
  if (!message) message = 'failed without a message';
  return { name, message: message.startsWith(model) ? message : `${model}: ${message}` };
}

/** Extracts the human message from a Step Functions Cause, which may be Lambda's JSON error. */
export function causeMessage(cause: string): string {
  const trimmed = cause.trim();
  if (trimmed.startsWith('{')) {
    try {
      const parsed = JSON.parse(trimmed) as Record<string, unknown>;
      if (typeof parsed.errorMessage === 'string') return parsed.errorMessage;
      if (typeof parsed.message === 'string') return parsed.message;
    } catch {
      // Not JSON after all: fall through to the raw text.
    }
  }
  return trimmed;
}

/**
 * Checks an answering member's scores have the expected shape; a member that returned the wrong
 * number of rows or classes, non-finite values, or rows that are not probabilities (logits, raw
 * scores) is turned into a failure that says so, and the quorum decides without it.
 */
export function checkShape(o: MemberOutcome, rows: number, classes: number): MemberOutcome {
  if (o.status !== 'ok') return o;
  const p = o.probabilities;
  let problem: string | undefined;
  if (!Array.isArray(p)) problem = 'returned no probabilities';
  else if (p.length !== rows) problem = `returned ${p.length} rows for ${rows} instances`;
  else {
    const bad = p.findIndex(
      (row) => !Array.isArray(row) || row.length !== classes || row.some((v) => !Number.isFinite(v)),
    );
    if (bad >= 0) problem = `row ${bad} is not ${classes} finite probabilities`;
    else {
      const off = firstDistributionProblem(p);
      if (off) problem = `row ${off.row} is not probabilities: it ${off.why}; ${PROBABILITIES_HINT}`;
    }
  }
  if (!problem) return o;
  const { probabilities: _dropped, ...rest } = o;
  return { ...rest, status: 'failed', error: { name: 'ModelRunError', message: `${o.model}: ${problem}` } };
}

/**
 * What the operations side needs of one member's call (metrics, traces): its status, its latency
 * when one was measured, and how many rows it scored. No scores, features or ids.
 */
export interface MemberObservation {
  model: string;
  status: MemberStatus;
  latencyMs?: number;
  rows: number;
}

/**
 * Observations of a call's members from their outcomes or records. A latency counts when it was
 * measured: always for a member that answered; for a failed one only when it is above zero (a
 * record fills an unmeasured latency with 0).
 */
export function memberObservations(
  members: readonly { model: string; status: MemberStatus; latencyMs?: number }[],
  rows: number,
): MemberObservation[] {
  return members.map((m) => {
    const measured = typeof m.latencyMs === 'number' && (m.status === 'ok' || m.latencyMs > 0);
    return {
      model: m.model,
      status: m.status,
      ...(measured ? { latencyMs: m.latencyMs } : {}),
      rows: m.status === 'ok' ? rows : 0,
    };
  });
}
