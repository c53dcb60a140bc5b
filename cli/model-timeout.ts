import { type FunctionTimeouts, manifestTimeoutNotes } from '../local/deploy-settings.js';

/**
 * What `fanout models add --timeout` should tell its user when the timeout is longer than the
 * functions let a member wait (serverless.yml's runner and API timeouts): the member is cut to
 * that at run time, so the user hears it now rather than from a log. Undefined when it fits, or
 * when the timeouts are unknown (no readable serverless.yml).
 */
export function timeoutNote(
  id: string,
  seconds: number | undefined,
  timeouts: FunctionTimeouts | undefined,
): string | undefined {
  if (seconds === undefined) return undefined;
  const [note] = manifestTimeoutNotes([{ id, timeoutSeconds: seconds }], timeouts);
  return note && `note: --timeout ${seconds}: ${note}. Raise those timeouts to let it wait longer.`;
}

/** Rows the batch state machine's ItemBatcher hands each member at once (MaxItemsPerBatch). */
export const BATCH_ROWS = 250;

/**
 * A warning when a batch job's rows would take the model more than half its timeout here: a
 * member that times out on every batch leaves each batch's rows answered without it (degraded),
 * which a user would otherwise learn from a job's results. A Lambda at 1,024 MB has a fraction of
 * one core, so it would take longer there than on a workstation.
 */
export function batchTimeNote(
  id: string,
  batchMs: number,
  timeoutSeconds: number,
  setting = '--timeout',
): string | undefined {
  if (!(batchMs > (timeoutSeconds * 1000) / 2)) return undefined;
  const seconds = batchMs / 1000;
  return (
    `warning: ${id} took about ${seconds < 10 ? seconds.toFixed(1) : Math.round(seconds)} s here for a batch job's ${BATCH_ROWS} rows, ` +
    `${Math.round((batchMs / (timeoutSeconds * 1000)) * 100)}% of its ${timeoutSeconds} s timeout (and a Lambda has less CPU than this machine): ` +
    `batches it does not answer in time are answered without it. Give it a longer ${setting} (at least ${Math.ceil(seconds * 4)} s), or expect degraded batch rows`
  );
}

/**
 * How long one call with a batch job's rows ({@link BATCH_ROWS}, as the runner gets them) takes the
 * model here, warm (the session is loaded by then): `rows` repeated to a whole batch, since a
 * model's time does not grow in step with its rows (a batch shares each matrix product).
 */
export async function batchMsHere(
  score: (rows: number[][]) => Promise<number[][]>,
  rows: number[][],
  clock: () => number = () => performance.now(),
): Promise<number> {
  if (rows.length === 0) return 0;
  const batch = Array.from({ length: BATCH_ROWS }, (_, i) => rows[i % rows.length] as number[]);
  const started = clock();
  await score(batch);
  return clock() - started;
}
