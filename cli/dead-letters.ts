/**
 * Replays the upload events the batch trigger could not handle. Lambda sends an asynchronous
 * invocation that failed all its attempts to the on-failure destination as a record holding the
 * original S3 event (`requestPayload`) and the last error (`responsePayload`); this reads those
 * records from the dead-letter queue, invokes the trigger again with each event and deletes a
 * record only once the trigger handled it. A record whose replay fails again stays in the queue
 * (visible again after its visibility timeout) and is reported with the new error.
 */

import { decodeS3Key } from '../functions/core/jobs.js';

/** One message of the dead-letter queue. */
export interface DeadLetter {
  messageId: string;
  receiptHandle: string;
  body: string;
}

/** What replaying needs of AWS: the queue and the trigger function. */
export interface ReplayPorts {
  /** Up to 10 messages, hidden from other readers for the visibility timeout; none when empty. */
  receive(): Promise<DeadLetter[]>;
  delete(receiptHandle: string): Promise<void>;
  /** Makes a received message visible again at once (it stays in the queue for the next replay). */
  release(receiptHandle: string): Promise<void>;
  /** Invokes the trigger synchronously; `error` is set when the function failed. */
  invoke(payload: unknown): Promise<{ error?: string }>;
}

/** The parts of a Lambda destination record the replay uses. */
export interface DestinationRecord {
  requestPayload?: { Records?: { s3?: { bucket?: { name?: string }; object?: { key?: string } } }[] };
  responsePayload?: { errorType?: string; errorMessage?: string };
  requestContext?: { condition?: string; approximateInvokeCount?: number };
  timestamp?: string;
}

/** What happened to one message. */
export interface ReplayOutcome {
  uploads: string[];
  firstError: string;
  result: 'replayed' | 'failed again' | 'listed' | 'unreadable';
  error?: string;
}

/** `s3://bucket/key` for each object of the event (keys as S3 sends them, URL-encoded). */
export function uploadsOf(record: DestinationRecord): string[] {
  return (record.requestPayload?.Records ?? []).map(
    (r) => `s3://${r.s3?.bucket?.name ?? '?'}/${decodeS3Key(r.s3?.object?.key ?? '?')}`,
  );
}

function errorOf(record: DestinationRecord): string {
  const e = record.responsePayload;
  const why = e
    ? `${e.errorType ?? 'Error'}: ${e.errorMessage ?? ''}`
    : (record.requestContext?.condition ?? 'unknown');
  return `${why} (after ${record.requestContext?.approximateInvokeCount ?? '?'} attempts, ${record.timestamp ?? '?'})`;
}

/**
 * Replays (or, with `dryRun`, only lists) up to `max` dead letters, one at a time, reporting each
 * through `report` as it goes. A message that is not a destination record is left in the queue.
 */
export async function replayDeadLetters(
  ports: ReplayPorts,
  options: { max: number; dryRun: boolean; report: (o: ReplayOutcome) => void },
): Promise<ReplayOutcome[]> {
  const outcomes: ReplayOutcome[] = [];
  // Received messages stay hidden while this runs, so each comes once; kept ones are let go at the end.
  const seen = new Set<string>();
  const kept: string[] = [];
  try {
    while (outcomes.length < options.max) {
      const batch = (await ports.receive()).filter((m) => !seen.has(m.messageId));
      if (batch.length === 0) break;
      for (const message of batch) {
        seen.add(message.messageId);
        if (outcomes.length >= options.max) {
          kept.push(message.receiptHandle);
          continue;
        }
        const outcome = await replayOne(ports, message, options.dryRun);
        if (outcome.result !== 'replayed') kept.push(message.receiptHandle);
        outcomes.push(outcome);
        options.report(outcome);
      }
    }
  } finally {
    await Promise.allSettled(kept.map((handle) => ports.release(handle)));
  }
  return outcomes;
}

async function replayOne(ports: ReplayPorts, message: DeadLetter, dryRun: boolean): Promise<ReplayOutcome> {
  let record: DestinationRecord;
  try {
    record = JSON.parse(message.body) as DestinationRecord;
  } catch {
    record = {};
  }
  const outcome: ReplayOutcome = {
    uploads: uploadsOf(record),
    firstError: errorOf(record),
    result: 'listed',
  };
  if (!record.requestPayload) return { ...outcome, result: 'unreadable' };
  if (dryRun) return outcome;
  const { error } = await ports.invoke(record.requestPayload);
  if (error) return { ...outcome, result: 'failed again', error };
  await ports.delete(message.receiptHandle);
  return { ...outcome, result: 'replayed' };
}
