import { describe, FLOAT32_MAX, type InstanceProblem, toRow } from './instances.js';

/** Plain decimal notation only: `Number()` would also take `0x10`, `0b1` and `Infinity`. */
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/** Input formats accepted for batch scoring, chosen by the uploaded object's extension. */
export type BatchFormat = 'csv' | 'jsonl';

/** A row ready to score: its 1-based line in the uploaded file, its id, its features in order. */
export interface GoodRow {
  line: number;
  id: string;
  features: number[];
}

/** A row that cannot be scored, with the reason to write to the error file. */
export interface BadRow {
  line: number;
  id?: string;
  reason: string;
}

/** The format an object key implies, or undefined for anything else. */
export function formatOf(key: string): BatchFormat | undefined {
  const lower = key.toLowerCase();
  if (lower.endsWith('.csv')) return 'csv';
  if (lower.endsWith('.jsonl') || lower.endsWith('.ndjson')) return 'jsonl';
  return undefined;
}

/**
 * Splits one CSV record into fields (RFC 4180 quoting: `"a,b"`, `""` for a quote). Returns
 * undefined for an unterminated quote. Records are single lines: batch files are numeric tables.
 */
export function splitCsvLine(line: string): string[] | undefined {
  const fields: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i];
    if (quoted) {
      if (ch === '"' && line[i + 1] === '"') {
        field += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"' && field === '') quoted = true;
    else if (ch === ',') {
      fields.push(field);
      field = '';
    } else field += ch;
  }
  if (quoted) return undefined;
  fields.push(field);
  return fields;
}

/** Where each feature and the optional id sit in a CSV header. */
export interface CsvLayout {
  columns: number;
  idColumn?: number;
  featureColumns: number[];
  names: string[];
}

/**
 * Checks a CSV header against the ensemble's features: every feature exactly once, in any order,
 * plus an optional `id` column. Returns the layout, or the reason the file cannot be scored.
 */
export function csvLayout(headerLine: string, features: readonly string[]): CsvLayout | { error: string } {
  const names = splitCsvLine(headerLine.replace(/^\uFEFF/, ''))?.map((n) => n.trim());
  if (!names) return { error: 'header line has an unterminated quote' };
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup !== undefined) return { error: `header names column "${dup}" twice` };
  const known = new Set([...features, 'id']);
  const unknown = names.filter((n) => !known.has(n));
  const missing = features.filter((f) => !names.includes(f));
  if (unknown.length || missing.length) {
    const parts = [];
    if (missing.length) parts.push(`missing feature column(s) ${quoteList(missing)}`);
    if (unknown.length) parts.push(`unknown column(s) ${quoteList(unknown)}`);
    return {
      error: `header ${parts.join('; ')}; expected the ${features.length} feature names and an optional "id"`,
    };
  }
  const idColumn = names.indexOf('id');
  return {
    columns: names.length,
    idColumn: idColumn >= 0 ? idColumn : undefined,
    featureColumns: features.map((f) => names.indexOf(f)),
    names,
  };
}

function quoteList(names: string[]): string {
  const shown = names.slice(0, 5).map((n) => `"${n}"`);
  return names.length > 5 ? `${shown.join(', ')} and ${names.length - 5} more` : shown.join(', ');
}

/** Parses one CSV data line against the header layout. */
export function parseCsvRow(
  text: string,
  line: number,
  layout: CsvLayout,
  features: readonly string[],
): GoodRow | BadRow {
  const fields = splitCsvLine(text);
  if (!fields) return { line, reason: 'unterminated quote' };
  const id = layout.idColumn === undefined ? String(line) : fields[layout.idColumn]?.trim() || String(line);
  if (fields.length !== layout.columns) {
    return { line, id, reason: `expected ${layout.columns} columns, got ${fields.length}` };
  }
  const values: number[] = [];
  for (let j = 0; j < features.length; j++) {
    const raw = (fields[layout.featureColumns[j] as number] as string).trim();
    const name = features[j] as string;
    if (raw === '') return { line, id, reason: `column "${name}": empty value` };
    const value = DECIMAL.test(raw) ? Number(raw) : Number.NaN;
    if (!Number.isFinite(value)) {
      return { line, id, reason: `column "${name}": ${describe(raw)} is not a decimal number` };
    }
    if (Math.abs(value) > FLOAT32_MAX) {
      return { line, id, reason: `column "${name}": ${raw} is outside the float32 range models use` };
    }
    values.push(value);
  }
  return { line, id, features: values };
}

/** Parses one JSON Lines record `{"id"?, "features": [...] | {...}}`. */
export function parseJsonlRow(text: string, line: number, features: readonly string[]): GoodRow | BadRow {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    return { line, reason: `not valid JSON: ${(err as Error).message}` };
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    return { line, reason: `expected an object {"id"?, "features"}, got ${describe(doc)}` };
  }
  const record = doc as Record<string, unknown>;
  let id = String(line);
  if (record.id !== undefined) {
    if (typeof record.id !== 'string' && typeof record.id !== 'number') {
      return { line, reason: `"id" must be a string or a number, got ${describe(record.id)}` };
    }
    id = String(record.id);
  }
  if (record.features === undefined) return { line, id, reason: 'missing "features"' };
  const problems: InstanceProblem[] = [];
  const values = toRow(record.features, 0, features, problems);
  const first = problems[0];
  if (first) {
    const where = first.field === undefined ? '' : `feature "${first.field}": `;
    const more = problems.length > 1 ? ` (and ${problems.length - 1} more)` : '';
    return { line, id, reason: `${where}${first.reason}${more}` };
  }
  return { line, id, features: values };
}

/**
 * True when the start of an upload looks binary: a NUL byte, or bytes that are not UTF-8. A
 * multi-byte character cut at the end of `head` is not a problem (streaming decode).
 */
export function looksBinary(head: Uint8Array): boolean {
  if (head.includes(0)) return true;
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(head, { stream: true });
    return false;
  } catch {
    return true;
  }
}

/** Quotes a CSV field when it needs it. */
export function csvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
}
