import { fileURLToPath } from 'node:url';
import type { OnnxScorer } from '../../functions/adapters/onnx-scorer.js';
import type { GoodRow } from '../../functions/core/batch-rows.js';
import { loadManifest, localOnnx, type Manifest, type ModelSpec } from '../../functions/core/manifest.js';
import { type MemberOutcome, normaliseOutcome } from '../../functions/core/outcomes.js';
import type { BatchStarter, Scorer } from '../../functions/core/ports.js';
import { scoreMember } from '../../functions/runner/score-member.js';
import { type Dataset, readDataset } from '../models/data.js';

export const MANIFEST_PATH = fileURLToPath(new URL('../../models/manifest.json', import.meta.url));
export const manifest = (): Manifest => loadManifest(MANIFEST_PATH);

/** The breast-cancer ensemble as the manifest declares it (a model added there joins the tests). */
const bcEnsemble = () => {
  const e = manifest().ensembles.get('breast-cancer');
  if (!e) throw new Error(`${MANIFEST_PATH} has no breast-cancer ensemble`);
  return e;
};
export const BC_MEMBERS = bcEnsemble().members;
export const BC_LABELS = bcEnsemble().labels;
export const BC_QUORUM = bcEnsemble().quorum;
/** Members that must fail to miss the quorum: every one past the first quorum - 1. */
export const BC_BELOW_QUORUM = BC_MEMBERS.slice(BC_QUORUM - 1);

/** The breast-cancer ensemble's 30 feature names, in manifest order. */
export const bcFeatures = (): string[] => manifest().ensembles.get('breast-cancer')?.features as string[];

let dataset: Dataset | undefined;
/** The 569-row breast cancer data set (raw features in manifest order, targets 0 = malignant). */
export function breastCancer(): Dataset {
  dataset ??= readDataset('data/breast_cancer.csv');
  return dataset;
}

/** A data-set row's id in the generated upload files. */
export const idOf = (index: number) => `p${String(index).padStart(3, '0')}`;

/** The three malformed rows mixed into the generated CSV, and the reason each must produce. */
export const MALFORMED = [
  { id: 'bad-columns', reason: /expected 31 columns, got 30/ },
  { id: 'bad-number', reason: /column "mean texture": the string "abc" is not a decimal number/ },
  { id: 'bad-empty', reason: /column "mean area": empty value/ },
];

/** The layout of a generated upload: where each data-set row and each malformed row landed. */
export interface Upload {
  text: string;
  /** line number (1-based, in the file) of data-set row i */
  lineOf: number[];
  /** line numbers of the malformed rows, in MALFORMED order */
  badLines: number[];
}

/**
 * The breast cancer data set as an upload CSV: a header of feature names in a shuffled order with
 * the `id` column in the middle, CRLF line ends, and the three MALFORMED rows after rows 10, 200
 * and 400.
 */
export function breastCancerCsv(): Upload {
  const features = bcFeatures();
  const { rows } = breastCancer();
  // A fixed permutation: reversed, with id inserted at position 7.
  const columns: (string | number)[] = features.map((_, j) => j).reverse();
  columns.splice(7, 0, 'id');
  const header = columns.map((c) => (c === 'id' ? 'id' : csvName(features[c as number] as string))).join(',');
  const render = (id: string, values: string[]) =>
    columns.map((c) => (c === 'id' ? id : (values[c as number] as string))).join(',');
  const lines = [header];
  const lineOf: number[] = [];
  const badLines: number[] = [];
  rows.forEach((row, i) => {
    lines.push(render(idOf(i), row.map(String)));
    lineOf.push(lines.length);
    if (i === 10) {
      lines.push(render('bad-columns', row.map(String)).replace(/,[^,]*$/, ''));
      badLines.push(lines.length);
    }
    if (i === 200) {
      const values = row.map(String);
      values[1] = 'abc';
      lines.push(render('bad-number', values));
      badLines.push(lines.length);
    }
    if (i === 400) {
      const values = row.map(String);
      values[3] = '';
      lines.push(render('bad-empty', values));
      badLines.push(lines.length);
    }
  });
  return { text: `${lines.join('\r\n')}\r\n`, lineOf, badLines };
}

const csvName = (name: string) => (/[",]/.test(name) ? `"${name.replaceAll('"', '""')}"` : name);

/** The data set as JSON Lines: even rows with features as an array, odd rows as an object. */
export function breastCancerJsonl(): Upload {
  const features = bcFeatures();
  const lines: string[] = [];
  const lineOf: number[] = [];
  const badLines: number[] = [];
  breastCancer().rows.forEach((row, i) => {
    const asObject = Object.fromEntries(features.map((f, j) => [f, row[j]]));
    lines.push(JSON.stringify({ id: idOf(i), features: i % 2 === 0 ? row : asObject }));
    lineOf.push(lines.length);
    if (i === 5) {
      lines.push('{"id": "bad-json", "features": [1, 2');
      badLines.push(lines.length);
    }
    if (i === 300) {
      lines.push(JSON.stringify({ id: 'bad-missing', features: { ...asObject, 'mean radius': undefined } }));
      badLines.push(lines.length);
    }
  });
  return { text: `${lines.join('\n')}\n`, lineOf, badLines };
}

/**
 * Runs every member of an ensemble over rows with the real ONNX scorer, as the runners would. A
 * SageMaker member is scored from its bundled ONNX file, as the local SageMaker-compatible
 * endpoint serves it.
 */
export async function scoreMembers(
  scorer: OnnxScorer,
  members: readonly string[],
  rows: readonly GoodRow[],
): Promise<MemberOutcome[]> {
  const instances = rows.map((r) => r.features);
  const sagemaker: Scorer = {
    score(model: ModelSpec, input: readonly (readonly number[])[]) {
      const onnx = localOnnx(model);
      if (!onnx) throw new Error(`${model.id} has no ONNX file here`);
      return scorer.score(onnx, input);
    },
  };
  return Promise.all(
    members.map((model) =>
      scoreMember({ model, instances }, manifest(), { onnx: scorer, sagemaker }).catch(
        // The runner's error, as the state machine's MemberFailed Pass state hands it on.
        (err: Error): MemberOutcome =>
          normaliseOutcome({
            model,
            status: 'failed',
            error: {
              Error: err.name,
              Cause: JSON.stringify({ errorType: err.name, errorMessage: err.message }),
            },
          }),
      ),
    ),
  );
}

/** A member failure as the batch state machine's MemberFailed Pass state shapes it. */
export const failedMember = (model: string, message = `${model}: inference failed: boom`) => ({
  model,
  status: 'failed',
  error: {
    Error: 'ModelRunError',
    Cause: JSON.stringify({
      errorType: 'ModelRunError',
      errorMessage: message,
      trace: ['at /var/task/x.js'],
    }),
  },
});

/** A BatchStarter fake with Step Functions' named-execution semantics: a repeated name is 'exists'. */
export class FakeStarter implements BatchStarter {
  readonly calls: { name: string; input: unknown }[] = [];
  private readonly names = new Set<string>();
  async start(name: string, input: unknown): Promise<'started' | 'exists'> {
    this.calls.push({ name, input: structuredClone(input) });
    if (this.names.has(name)) return 'exists';
    this.names.add(name);
    return 'started';
  }
}

/** Parses a CSV text the tests produce (quoted fields allowed) into rows of fields, header first. */
export function csvRows(text: string): string[][] {
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      const out: string[] = [];
      let field = '';
      let quoted = false;
      for (let i = 0; i < l.length; i++) {
        const ch = l[i] as string;
        if (quoted) {
          if (ch === '"' && l[i + 1] === '"') {
            field += '"';
            i++;
          } else if (ch === '"') quoted = false;
          else field += ch;
        } else if (ch === '"') quoted = true;
        else if (ch === ',') {
          out.push(field);
          field = '';
        } else field += ch;
      }
      out.push(field);
      return out;
    });
}
