import { manifestTimeoutNotes, readFunctionTimeouts } from '../local/member-timeouts.js';

/**
 * What `fanout models add --timeout` should tell its user when the timeout is longer than the
 * functions let a member wait (serverless.yml's runner and API timeouts): the member is cut to
 * that at run time, so the user hears it now rather than from a log. Undefined when it fits, or
 * when there is no readable serverless.yml to compare with.
 */
export function timeoutNote(
  id: string,
  seconds: number | undefined,
  file = 'serverless.yml',
): string | undefined {
  if (seconds === undefined) return undefined;
  const [note] = manifestTimeoutNotes([{ id, timeoutSeconds: seconds }], readFunctionTimeouts(file));
  return note && `note: --timeout ${seconds}: ${note}. Raise those timeouts to let it wait longer.`;
}
