/**
 * Writing the files `fanout models add` keeps in step: `metrics.json`, the model card and golden
 * files are written in the trainer's own layout (models/train/train.py), so a model added here and
 * a retrain write the same shapes, and neither rewrites what the other wrote.
 */

/** JSON as the trainer writes it: objects indented, each innermost array (a row) on one line. */
export function dumps(value: unknown, indent = 0): string {
  const pad = '  '.repeat(indent);
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const entries = Object.entries(value).filter(([, v]) => v !== undefined);
    if (entries.length === 0) return '{}';
    const items = entries.map(([k, v]) => `${pad}  ${ascii(JSON.stringify(k))}: ${dumps(v, indent + 1)}`);
    return `{\n${items.join(',\n')}\n${pad}}`;
  }
  if (Array.isArray(value)) {
    if (value.some((v) => v !== null && typeof v === 'object')) {
      return `[\n${value.map((v) => `${pad}  ${dumps(v, indent + 1)}`).join(',\n')}\n${pad}]`;
    }
    return `[${value.map((v) => scalar(v)).join(', ')}]`;
  }
  return scalar(value);
}

function scalar(v: unknown): string {
  if (typeof v === 'number' && !Number.isFinite(v)) throw new Error(`cannot write ${v} as JSON`);
  return ascii(JSON.stringify(v) ?? 'null');
}

/** Python's json.dumps escapes everything outside ASCII; so does this, so both write the same bytes. */
function ascii(text: string): string {
  return text.replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * Adds or replaces (by `id`) one entry of `metrics.json`'s `models` list, leaving every other byte
 * of the file as it was (the trainer writes floats as Python does: a re-serialisation would churn
 * them). Falls back to rewriting the file when it is not in the trainer's layout.
 */
export function upsertMetricsModel(text: string, entry: { id: string } & Record<string, unknown>): string {
  const lines = text.split('\n');
  const start = lines.indexOf('  "models": [');
  const end = start < 0 ? -1 : lines.findIndex((l, i) => i > start && /^ {2}\],?$/.test(l));
  const rendered = `    ${dumps(entry, 2)}`;
  if (start >= 0 && end > start) {
    const spans: { from: number; to: number; id?: string }[] = [];
    for (let i = start + 1; i < end; i++) {
      if (lines[i] !== '    {') continue;
      const to = lines.findIndex((l, j) => j > i && /^ {4}\},?$/.test(l));
      if (to < 0 || to >= end) break;
      const body = lines
        .slice(i, to + 1)
        .join('\n')
        .replace(/,$/, '');
      spans.push({ from: i, to, id: (JSON.parse(body) as { id?: string }).id });
      i = to;
    }
    const covered = spans.reduce((n, s) => n + (s.to - s.from + 1), 0);
    if (covered === end - start - 1 || spans.length === 0) {
      const entries = spans.map((s) =>
        lines
          .slice(s.from, s.to + 1)
          .join('\n')
          .replace(/,$/, ''),
      );
      const at = spans.findIndex((s) => s.id === entry.id);
      if (at >= 0) entries[at] = rendered;
      else entries.push(rendered);
      return [...lines.slice(0, start + 1), entries.join(',\n'), ...lines.slice(end)].join('\n');
    }
  }
  const doc = JSON.parse(text) as { models?: { id: string }[] };
  const models = (doc.models ?? []).filter((m) => m.id !== entry.id);
  const at = (doc.models ?? []).findIndex((m) => m.id === entry.id);
  models.splice(at >= 0 ? at : models.length, 0, entry);
  return `${dumps({ ...doc, models })}\n`;
}

/** A figure as the model card shows it: four decimals, or a dash when it was not measured. */
const figure = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(4) : '–');

/** A metrics.json model entry, as far as the model card shows it. */
export interface CardModel {
  id: string;
  family: string;
  dataset?: string;
  trainedOn?: string;
  addedOn?: string;
  heldOut?: { accuracy?: number; rocAuc?: number | null };
  wholeData?: { accuracy?: number };
  file: string;
  bytes: number;
  sha256: string;
}

/** The model card's row for a model, exactly as the trainer's `model_card` writes it. */
export function cardRow(m: CardModel): string {
  return `| \`${m.id}\` | ${m.family} | ${m.dataset ?? '–'} | ${m.trainedOn ?? m.addedOn ?? '–'} | ${figure(m.heldOut?.accuracy)} | ${figure(m.heldOut?.rocAuc)} | ${figure(m.wholeData?.accuracy)} | \`${m.file}\` | ${m.bytes} | \`${m.sha256.slice(0, 16)}…\` |`;
}

/** Adds or replaces a model's row in the model card's members table (the first `| id |` table). */
export function upsertCardRow(card: string, id: string, row: string): string {
  const lines = card.split('\n');
  const header = lines.findIndex((l) => l.startsWith('| id | family |'));
  if (header < 0) {
    return `${card.replace(/\n*$/, '\n')}\n## Added models\n\n| id | family | data set | trained | held-out acc | held-out ROC AUC | whole-data acc | file | bytes | sha256 |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n${row}\n`;
  }
  let last = header + 1;
  while (lines[last + 1]?.startsWith('|')) last++;
  const existing = lines.findIndex((l, i) => i > header + 1 && i <= last && l.startsWith(`| \`${id}\` |`));
  if (existing >= 0) lines[existing] = row;
  else lines.splice(last + 1, 0, row);
  return lines.join('\n');
}
