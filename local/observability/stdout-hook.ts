/**
 * EMF lines out of this process's stdout. Handlers write CloudWatch EMF lines to stdout as on
 * Lambda (Powertools Metrics writes through a Console bound to `process.stdout`, calling its
 * `write` each time, so patching `write` sees every line). While any listener is installed, each
 * EMF line goes to every listener and is not printed; every other write passes through unchanged.
 *
 * Only whole lines are recognised: a write that starts with `{"_aws":`. Powertools writes each
 * line in one write. A handler in a worker-thread instance writes to the worker's own stdout, which
 * this hook does not see; the pool gets those lines whole and writes each back to this process's
 * stdout in one write (lambda-pool.ts, defaultSink), so they pass through this hook as well.
 * Output of child processes, which have their own pipes, is not seen.
 */
const EMF_PREFIX = '{"_aws":';

type Listener = (line: string) => void;

/** The part of a stream the hook patches (process.stdout, or a stand-in in tests). */
export interface Writable {
  write: (chunk: never, ...rest: never[]) => boolean;
}

interface Hook {
  listeners: Set<Listener>;
  original: (this: unknown, chunk: unknown, ...rest: unknown[]) => boolean;
}

const hooks = new WeakMap<Writable, Hook>();

/** Whether a write's chunk starts like an EMF line (cheap: no decoding of other output). */
function startsLikeEmf(chunk: unknown): boolean {
  if (typeof chunk === 'string') return chunk.startsWith(EMF_PREFIX);
  if (chunk instanceof Uint8Array && chunk.length >= EMF_PREFIX.length) {
    for (let i = 0; i < EMF_PREFIX.length; i++) if (chunk[i] !== EMF_PREFIX.charCodeAt(i)) return false;
    return true;
  }
  return false;
}

function deliver(listeners: Set<Listener>, line: string): void {
  for (const listener of listeners) {
    try {
      listener(line);
    } catch {
      // A listener's failure must not cost the handler that wrote the line.
    }
  }
}

function install(stream: Writable): Hook {
  const existing = hooks.get(stream);
  if (existing) return existing;
  const original = stream.write as Hook['original'];
  const hook: Hook = { listeners: new Set(), original };
  const patched = function (this: unknown, chunk: unknown, ...rest: unknown[]): boolean {
    if (hook.listeners.size === 0 || !startsLikeEmf(chunk)) return original.call(this, chunk, ...rest);
    const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString('utf8');
    const others: string[] = [];
    for (const line of text.split('\n')) {
      if (line.startsWith(EMF_PREFIX)) deliver(hook.listeners, line);
      else if (line !== '') others.push(line);
    }
    if (others.length) return original.call(this, `${others.join('\n')}\n`, ...rest);
    // Nothing left to print: honour the write's callback as a real write would, asynchronously.
    const callback = rest.find((r) => typeof r === 'function') as (() => void) | undefined;
    if (callback) process.nextTick(callback);
    return true;
  };
  stream.write = patched as Writable['write'];
  hooks.set(stream, hook);
  return hook;
}

/**
 * Sends every EMF line written to `stream` (this process's stdout by default) to `listener`, and
 * no longer prints them, until the returned function is called. The last listener to go puts the
 * stream's own `write` back.
 */
export function onEmfLines(
  listener: Listener,
  stream: Writable = process.stdout as unknown as Writable,
): () => void {
  const hook = install(stream);
  hook.listeners.add(listener);
  return () => {
    hook.listeners.delete(listener);
    if (hook.listeners.size === 0 && hooks.get(stream) === hook) {
      stream.write = hook.original as Writable['write'];
      hooks.delete(stream);
    }
  };
}
