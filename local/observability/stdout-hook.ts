/**
 * EMF lines out of this process's stdout. Handlers run in-process in the local stack and write
 * CloudWatch EMF lines to stdout as on Lambda (Powertools Metrics writes through a Console bound
 * to `process.stdout`, calling its `write` each time, so patching `write` sees every line). While
 * any listener is installed, each EMF line goes to every listener and is not printed; every other
 * write passes through unchanged.
 *
 * Only whole lines are recognised: a write that starts with `{"_aws":`. Powertools writes each
 * line in one write; output from another process (worker threads, child processes) arrives by its
 * own pipe and should be split into lines and handed to the collector's `ingest` directly.
 */
const EMF_PREFIX = '{"_aws":';

type Listener = (line: string) => void;
type Write = typeof process.stdout.write;

const listeners = new Set<Listener>();
let original: Write | undefined;

/** Whether a write's chunk starts like an EMF line (cheap: no decoding of other output). */
function startsLikeEmf(chunk: unknown): boolean {
  if (typeof chunk === 'string') return chunk.startsWith(EMF_PREFIX);
  if (chunk instanceof Uint8Array && chunk.length >= EMF_PREFIX.length) {
    for (let i = 0; i < EMF_PREFIX.length; i++) if (chunk[i] !== EMF_PREFIX.charCodeAt(i)) return false;
    return true;
  }
  return false;
}

function deliver(line: string): void {
  for (const listener of listeners) {
    try {
      listener(line);
    } catch {
      // A listener's failure must not cost the handler that wrote the line.
    }
  }
}

function install(): void {
  if (original) return;
  const write = process.stdout.write;
  original = write;
  const patched = function (this: NodeJS.WriteStream, chunk: unknown, ...rest: unknown[]): boolean {
    if (listeners.size === 0 || !startsLikeEmf(chunk))
      return write.call(this, chunk as string, ...(rest as []));
    const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString('utf8');
    const others: string[] = [];
    for (const line of text.split('\n')) {
      if (line.startsWith(EMF_PREFIX)) deliver(line);
      else if (line !== '') others.push(line);
    }
    if (others.length) return write.call(this, `${others.join('\n')}\n`, ...(rest as []));
    // Nothing left to print: honour the write's callback as a real write would, asynchronously.
    const callback = rest.find((r) => typeof r === 'function') as (() => void) | undefined;
    if (callback) process.nextTick(callback);
    return true;
  };
  process.stdout.write = patched as Write;
}

function uninstall(): void {
  if (!original) return;
  process.stdout.write = original;
  original = undefined;
}

/**
 * Sends every EMF line this process writes to stdout to `listener` (and no longer prints them),
 * until the returned function is called.
 */
export function onEmfLines(listener: Listener): () => void {
  listeners.add(listener);
  install();
  return () => {
    listeners.delete(listener);
    if (listeners.size === 0) uninstall();
  };
}
