/**
 * Splits a byte stream into text lines without holding more than one line and one chunk in
 * memory. Handles `\n` and `\r\n`, strips a UTF-8 BOM, and yields the 1-based line number.
 * Calls `onChunk` with each raw chunk first; with `onInvalidUtf8`, bytes that are not UTF-8 throw
 * the error it makes (binary detection).
 */
export async function* readLines(
  source: AsyncIterable<Uint8Array | string>,
  onChunk?: (chunk: Uint8Array, offset: number) => void,
  onInvalidUtf8?: (offset: number) => Error,
): AsyncGenerator<{ line: number; text: string }> {
  // One decoder across chunks: a character split between two chunks is still one character.
  const decoder = new TextDecoder('utf-8', { fatal: onInvalidUtf8 !== undefined });
  let pending = '';
  let line = 0;
  let offset = 0;
  for await (const raw of source) {
    const chunk = typeof raw === 'string' ? new TextEncoder().encode(raw) : raw;
    onChunk?.(chunk, offset);
    offset += chunk.length;
    try {
      pending += decoder.decode(chunk, { stream: true });
    } catch (err) {
      throw onInvalidUtf8?.(offset - chunk.length) ?? err;
    }
    let nl = pending.indexOf('\n');
    let start = 0;
    while (nl >= 0) {
      line++;
      yield { line, text: clean(pending.slice(start, nl), line) };
      start = nl + 1;
      nl = pending.indexOf('\n', start);
    }
    pending = pending.slice(start);
  }
  try {
    pending += decoder.decode();
  } catch (err) {
    throw onInvalidUtf8?.(offset) ?? err;
  }
  if (pending.length > 0) {
    line++;
    yield { line, text: clean(pending, line) };
  }
}

function clean(text: string, line: number): string {
  const t = text.endsWith('\r') ? text.slice(0, -1) : text;
  return line === 1 ? t.replace(/^\uFEFF/, '') : t;
}
