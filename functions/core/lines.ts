/**
 * Splits a byte stream into text lines without holding more than one line and one chunk in
 * memory. Handles `\n` and `\r\n`, strips a UTF-8 BOM, and yields the 1-based line number.
 * Calls `onChunk` with each raw chunk first (binary detection).
 */
export async function* readLines(
  source: AsyncIterable<Uint8Array | string>,
  onChunk?: (chunk: Uint8Array, offset: number) => void,
): AsyncGenerator<{ line: number; text: string }> {
  const decoder = new TextDecoder('utf-8');
  let pending = '';
  let line = 0;
  let offset = 0;
  for await (const raw of source) {
    const chunk = typeof raw === 'string' ? new TextEncoder().encode(raw) : raw;
    onChunk?.(chunk, offset);
    offset += chunk.length;
    pending += decoder.decode(chunk, { stream: true });
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
  pending += decoder.decode();
  if (pending.length > 0) {
    line++;
    yield { line, text: clean(pending, line) };
  }
}

function clean(text: string, line: number): string {
  const t = text.endsWith('\r') ? text.slice(0, -1) : text;
  return line === 1 ? t.replace(/^\uFEFF/, '') : t;
}
