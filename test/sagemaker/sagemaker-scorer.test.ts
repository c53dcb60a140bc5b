import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OnnxScorer } from '../../functions/adapters/onnx-scorer.js';
import { SageMakerScorer } from '../../functions/adapters/sagemaker-scorer.js';
import { ConfigError, ModelRunError } from '../../functions/core/errors.js';
import {
  loadManifest,
  localOnnx,
  type Manifest,
  type OnnxModelSpec,
  type SageMakerModelSpec,
} from '../../functions/core/manifest.js';
import { decodeScores } from '../../functions/core/sagemaker-codec.js';
import { parseSageMakerMembers, servedManifest } from '../../functions/core/served.js';
import { closeServer } from '../../local/http-util.js';
import { type LocalSageMaker, startLocalSageMaker } from '../../local/sagemaker-endpoint.js';
import { MODELS_DIR, maxAbsDiff, readDataset } from '../models/data.js';

const BC = readDataset('data/breast_cancer.csv');
const WINE = readDataset('data/wine_data.csv');
const BC_FEATURES = BC.rows[0]?.map((_, i) => `f${i}`) ?? [];
const WINE_FEATURES = WINE.rows[0]?.map((_, i) => `w${i}`) ?? [];
const GB_FILE = join(MODELS_DIR, 'breast-cancer/gradient-boosting.onnx');
const WINE_FILE = join(MODELS_DIR, 'wine/random-forest.onnx');

type Response = { format: 'probabilities' | 'positive-score' | 'named-fields'; field?: string };

/** A SageMaker member of the test manifest whose local endpoint serves a real ONNX file. */
const sagemakerModel = (
  id: string,
  set: 'bc' | 'wine',
  contentType: 'text/csv' | 'application/json',
  response: Response,
  timeoutSeconds = 5,
) => ({
  id,
  kind: 'sagemaker',
  version: '1.0.0',
  features: set,
  labels: set,
  timeoutSeconds,
  memoryMB: 1024,
  endpoint: { name: `ep-${id}`, contentType, response },
  localFile: set === 'bc' ? GB_FILE : WINE_FILE,
});

const MODELS = [
  sagemakerModel('bc-csv', 'bc', 'text/csv', { format: 'probabilities', field: 'predictions' }),
  sagemakerModel('bc-json', 'bc', 'application/json', { format: 'probabilities', field: 'predictions' }),
  sagemakerModel('bc-bare', 'bc', 'text/csv', { format: 'probabilities' }),
  sagemakerModel('bc-field', 'bc', 'application/json', { format: 'probabilities', field: 'scores' }),
  sagemakerModel('bc-positive', 'bc', 'text/csv', { format: 'positive-score' }),
  sagemakerModel('bc-positive-field', 'bc', 'application/json', { format: 'positive-score', field: 'out' }),
  sagemakerModel('bc-slow', 'bc', 'text/csv', { format: 'probabilities', field: 'predictions' }, 1),
  sagemakerModel('wine-named', 'wine', 'application/json', { format: 'named-fields' }),
  sagemakerModel('wine-named-field', 'wine', 'text/csv', { format: 'named-fields', field: 'rows' }),
];

let dir: string;
let manifest: Manifest;
let endpoint: LocalSageMaker;
let scorer: SageMakerScorer;
const onnx = new OnnxScorer();

const model = (id: string) => manifest.models.get(id) as SageMakerModelSpec;
/** What the same ONNX file answers in-process, the reference for every endpoint answer. */
const direct = (id: string, rows: number[][]) => onnx.score(localOnnx(model(id)) as OnnxModelSpec, rows);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fanout-sagemaker-'));
  const file = join(dir, 'manifest.json');
  writeFileSync(
    file,
    JSON.stringify({
      featureSets: { bc: BC_FEATURES, wine: WINE_FEATURES },
      labelSets: { bc: ['malignant', 'benign'], wine: ['class_0', 'class_1', 'class_2'] },
      models: MODELS,
      ensembles: [
        { name: 'bc', members: ['bc-csv', 'bc-json'], strategy: 'soft-vote' },
        { name: 'wine', members: ['wine-named'], strategy: 'soft-vote' },
      ],
    }),
  );
  manifest = loadManifest(file);
  endpoint = await startLocalSageMaker(manifest, new Map(), 0);
  scorer = new SageMakerScorer({ region: 'us-east-1', endpoint: endpoint.url });
});

afterAll(async () => {
  await endpoint?.close();
  await onnx.close();
  rmSync(dir, { recursive: true, force: true });
});

afterEach(() => {
  for (const m of MODELS) endpoint.setFault(m.endpoint.name, undefined);
});

/** The ModelRunError a failing call rejects with (fails the test if it resolves). */
async function failure(id: string, rows: number[][] = BC.rows.slice(0, 2)): Promise<ModelRunError> {
  const err = await scorer.score(model(id), rows).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ModelRunError);
  return err as ModelRunError;
}

describe('SageMakerScorer against the local SageMaker runtime', () => {
  it('gives the probabilities of the ONNX file for every real breast-cancer row, as CSV and as JSON', async () => {
    const expected = await direct('bc-csv', BC.rows);
    const csv = await scorer.score(model('bc-csv'), BC.rows);
    const json = await scorer.score(model('bc-json'), BC.rows);
    expect(csv).toHaveLength(BC.rows.length);
    expect(maxAbsDiff(csv, expected)).toBeLessThan(1e-5);
    expect(maxAbsDiff(json, expected)).toBeLessThan(1e-5);
  });

  it('decodes a bare list of probability rows (no field)', async () => {
    const rows = BC.rows.slice(0, 25);
    expect(
      maxAbsDiff(await scorer.score(model('bc-bare'), rows), await direct('bc-bare', rows)),
    ).toBeLessThan(1e-5);
  });

  it('decodes probability rows under the field the manifest names', async () => {
    const rows = BC.rows.slice(100, 130);
    expect(
      maxAbsDiff(await scorer.score(model('bc-field'), rows), await direct('bc-field', rows)),
    ).toBeLessThan(1e-5);
  });

  it('turns one positive score per row into [1 - s, s], bare or under a field', async () => {
    const rows = BC.rows.slice(200, 240);
    const expected = await direct('bc-positive', rows);
    for (const id of ['bc-positive', 'bc-positive-field']) {
      const got = await scorer.score(model(id), rows);
      expect(maxAbsDiff(got, expected)).toBeLessThan(1e-5);
      for (const row of got) expect((row[0] as number) + (row[1] as number)).toBeCloseTo(1, 6);
    }
  });

  it('reads objects keyed by label in the label order of a three-class model', async () => {
    const rows = WINE.rows;
    const expected = await direct('wine-named', rows);
    for (const id of ['wine-named', 'wine-named-field']) {
      const got = await scorer.score(model(id), rows);
      expect(got.every((r) => r.length === 3)).toBe(true);
      expect(maxAbsDiff(got, expected)).toBeLessThan(1e-5);
    }
  });

  it('calls the endpoint name the deployment configures instead of the manifest one', async () => {
    const renamed = await startLocalSageMaker(manifest, new Map([['bc-csv', 'prod-gb']]), 0);
    try {
      const byName = new SageMakerScorer({
        region: 'us-east-1',
        endpoint: renamed.url,
        endpointNames: new Map([['bc-csv', 'prod-gb']]),
      });
      const rows = BC.rows.slice(0, 3);
      expect(
        maxAbsDiff(await byName.score(model('bc-csv'), rows), await direct('bc-csv', rows)),
      ).toBeLessThan(1e-5);
      const manifestName = new SageMakerScorer({ region: 'us-east-1', endpoint: renamed.url });
      await expect(manifestName.score(model('bc-csv'), rows)).rejects.toThrow(/ValidationError/);
    } finally {
      await renamed.close();
    }
  });

  it('refuses a model that is not a SageMaker member', async () => {
    const onnxModel = localOnnx(model('bc-csv')) as OnnxModelSpec;
    await expect(scorer.score(onnxModel, BC.rows.slice(0, 1))).rejects.toThrow(ModelRunError);
  });
});

describe('SageMakerScorer failures', () => {
  it("names the member, the endpoint and ModelError with the model's own message", async () => {
    endpoint.setFault('ep-bc-csv', { kind: 'model-error', status: 500, message: 'out of memory in predict' });
    const err = await failure('bc-csv');
    expect(err.message).toContain('bc-csv');
    expect(err.message).toContain('ep-bc-csv');
    expect(err.message).toContain('ModelError');
    expect(err.message).toContain('out of memory in predict');
  });

  it('succeeds after one throttled attempt thanks to the SDK retry', async () => {
    endpoint.setFault('ep-bc-csv', { kind: 'throttle', times: 1 });
    const rows = BC.rows.slice(0, 4);
    expect(maxAbsDiff(await scorer.score(model('bc-csv'), rows), await direct('bc-csv', rows))).toBeLessThan(
      1e-5,
    );
  });

  it('fails naming ThrottlingException when every attempt is throttled', async () => {
    endpoint.setFault('ep-bc-csv', { kind: 'throttle', times: 5 });
    const err = await failure('bc-csv');
    expect(err.message).toContain('bc-csv');
    expect(err.message).toContain('ep-bc-csv');
    expect(err.message).toContain('ThrottlingException');
  });

  it("says timed out when the endpoint answers after the member's timeout", async () => {
    endpoint.setFault('ep-bc-slow', { kind: 'delay', ms: 4000 });
    const err = await failure('bc-slow');
    expect(err.message).toContain('bc-slow');
    expect(err.message).toContain('ep-bc-slow');
    expect(err.message).toMatch(/timed out/);
  });

  it('names ValidationError when the endpoint does not exist', async () => {
    const missing: SageMakerModelSpec = {
      ...model('bc-csv'),
      id: 'bc-missing',
      endpoint: { ...model('bc-csv').endpoint, name: 'no-such-endpoint' },
    };
    const err = await scorer.score(missing, BC.rows.slice(0, 1)).then(
      () => undefined,
      (e: unknown) => e as ModelRunError,
    );
    expect(err).toBeInstanceOf(ModelRunError);
    expect(err?.message).toContain('bc-missing');
    expect(err?.message).toContain('no-such-endpoint');
    expect(err?.message).toContain('ValidationError');
    expect(err?.message).toMatch(/not found/);
  });

  it('names the connection error when nothing listens on the endpoint port', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await closeServer(closed);
    const nowhere = new SageMakerScorer({ region: 'us-east-1', endpoint: `http://127.0.0.1:${port}` });
    const err = await nowhere.score(model('bc-csv'), BC.rows.slice(0, 1)).then(
      () => undefined,
      (e: unknown) => e as ModelRunError,
    );
    expect(err).toBeInstanceOf(ModelRunError);
    expect(err?.message).toContain('bc-csv');
    expect(err?.message).toContain('ep-bc-csv');
    expect(err?.message).toContain('ECONNREFUSED');
  });

  it('names the member and endpoint when the answer does not fit the rows sent', async () => {
    const liar = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ predictions: [[0.5, 0.5]] }));
    });
    await new Promise<void>((r) => liar.listen(0, '127.0.0.1', r));
    try {
      const s = new SageMakerScorer({
        region: 'us-east-1',
        endpoint: `http://127.0.0.1:${(liar.address() as AddressInfo).port}`,
      });
      const err = await s.score(model('bc-csv'), BC.rows.slice(0, 3)).then(
        () => undefined,
        (e: unknown) => e as ModelRunError,
      );
      expect(err).toBeInstanceOf(ModelRunError);
      expect(err?.message).toContain('bc-csv: SageMaker endpoint "ep-bc-csv"');
      expect(err?.message).toContain('answer has 1 rows for 3 instances');
    } finally {
      await closeServer(liar);
    }
  });
});

describe('decodeScores', () => {
  const spec = (response: Response, labels = ['no', 'yes']): SageMakerModelSpec => ({
    id: 'm',
    kind: 'sagemaker',
    version: '1',
    features: ['a', 'b'],
    labels,
    timeoutSeconds: 5,
    memoryMB: 128,
    endpoint: { name: 'ep', contentType: 'text/csv', response },
  });
  const probs = spec({ format: 'probabilities' });

  it('reads JSON rows, CSV lines and the predictions field by default', () => {
    expect(decodeScores('[[0.1,0.9],[0.7,0.3]]', probs, 2)).toEqual([
      [0.1, 0.9],
      [0.7, 0.3],
    ]);
    expect(decodeScores('0.1,0.9\n0.7,0.3\n', probs, 2)).toEqual([
      [0.1, 0.9],
      [0.7, 0.3],
    ]);
    expect(decodeScores('{"predictions":[[0.2,0.8]]}', probs, 1)).toEqual([[0.2, 0.8]]);
  });

  it('reads CSV positive scores, one per line', () => {
    const out = decodeScores('0.25\n0.5', spec({ format: 'positive-score' }), 2) as number[][];
    expect(out).toEqual([
      [0.75, 0.25],
      [0.5, 0.5],
    ]);
  });

  it('rejects the wrong number of rows', () => {
    expect(decodeScores('[[0.1,0.9]]', probs, 2)).toBe('answer has 1 rows for 2 instances');
    expect(decodeScores('', probs, 1)).toBe('answer has 0 rows for 1 instances');
  });

  it('rejects rows of the wrong width', () => {
    expect(decodeScores('[[0.1,0.8,0.1]]', probs, 1)).toBe('row 0 is not 2 finite probabilities');
    expect(decodeScores('0.1\n0.2,0.8', probs, 2)).toBe('row 0 is not 2 finite probabilities');
  });

  it('rejects values that are not finite numbers', () => {
    expect(decodeScores('[[0.1,"0.9"]]', probs, 1)).toMatch(/row 0 is not 2 finite/);
    expect(decodeScores('0.1,abc', probs, 1)).toMatch(/row 0 is not 2 finite/);
    expect(decodeScores('[[0.1,null]]', probs, 1)).toMatch(/row 0 is not 2 finite/);
    expect(decodeScores('["x"]', spec({ format: 'positive-score' }), 1)).toMatch(/row 0 is not 2 finite/);
    expect(decodeScores('[{"no":0.5,"yes":"a"}]', spec({ format: 'named-fields' }), 1)).toMatch(
      /row 0 is not 2 finite/,
    );
  });

  it('rejects a row that is not a list, or not an object for named fields', () => {
    expect(decodeScores('[0.4]', probs, 1)).toBe('row 0 is not a list of 2 probabilities');
    expect(decodeScores('[[0.5,0.5]]', spec({ format: 'named-fields' }), 1)).toBe(
      'row 0 is not 2 finite probabilities',
    );
    expect(decodeScores('[7]', spec({ format: 'named-fields' }), 1)).toBe(
      'row 0 is not an object keyed by label',
    );
  });

  it('rejects a named-fields row missing a label', () => {
    expect(decodeScores('[{"no":0.5}]', spec({ format: 'named-fields' }), 1)).toBe(
      'row 0 is not 2 finite probabilities',
    );
  });

  it('names the missing field, whether configured or the default', () => {
    expect(decodeScores('{"scores":[]}', probs, 0)).toBe('answer has no "predictions" field');
    expect(
      decodeScores('{"predictions":[[0.5,0.5]]}', spec({ format: 'probabilities', field: 'out' }), 1),
    ).toBe('answer has no "out" field');
    expect(decodeScores('{"out":{"a":1}}', spec({ format: 'probabilities', field: 'out' }), 1)).toBe(
      'answer is not a list of per-row scores',
    );
  });

  it('rejects broken JSON and positive scores for a model with three labels', () => {
    expect(decodeScores('{"predictions": [', probs, 1)).toMatch(/^answer is not valid JSON/);
    expect(decodeScores('[0.5]', spec({ format: 'positive-score' }, ['a', 'b', 'c']), 1)).toBe(
      'positive-score answers need a model with exactly two labels',
    );
  });
});

describe('servedManifest and parseSageMakerMembers', () => {
  const real = loadManifest(join(MODELS_DIR, 'manifest.json'));

  it('serves everything unchanged when every SageMaker member has an endpoint', () => {
    const enabled = parseSageMakerMembers('bc-gradient-boosting', real);
    const served = servedManifest(real, enabled);
    expect(served.notes).toEqual([]);
    expect(served.manifest).toBe(real);
  });

  it('leaves a SageMaker member without an endpoint out of every ensemble, with a note each', () => {
    const served = servedManifest(real, new Map());
    const full = real.ensembles.get('breast-cancer');
    const bc = served.manifest.ensembles.get('breast-cancer');
    expect(bc?.members).toEqual(full?.members.filter((m) => m !== 'bc-gradient-boosting'));
    expect(bc?.weights).toHaveLength((full?.members.length ?? 0) - 1);
    expect(bc?.quorum).toBe(full?.quorum);
    expect(served.manifest.ensembles.get('wine')).toBe(real.ensembles.get('wine'));
    const notes = served.notes.filter((n) => n.includes('bc-gradient-boosting'));
    const having = [...real.ensembles.values()].filter((e) => e.members.includes('bc-gradient-boosting'));
    expect(notes).toHaveLength(having.length);
    expect(notes[0]).toMatch(/FANOUT_SAGEMAKER_MEMBERS/);
  });

  it('keeps weights aligned, lowers the quorum to what is left, and drops an ensemble with no member left', () => {
    const weighted = {
      ...real,
      ensembles: new Map([
        [
          'w',
          {
            name: 'w',
            members: ['bc-logreg', 'bc-gradient-boosting'],
            weights: [3, 7],
            strategy: 'weighted-mean' as const,
            quorum: 2,
            features: [],
            labels: [],
          },
        ],
        [
          'only-sm',
          {
            name: 'only-sm',
            members: ['bc-gradient-boosting'],
            weights: [1],
            strategy: 'soft-vote' as const,
            quorum: 1,
            features: [],
            labels: [],
          },
        ],
      ]),
    };
    const served = servedManifest(weighted, new Map());
    expect(served.manifest.ensembles.get('w')).toMatchObject({
      members: ['bc-logreg'],
      weights: [3],
      quorum: 1,
    });
    expect(served.manifest.ensembles.has('only-sm')).toBe(false);
    expect(served.notes.join('\n')).toMatch(/quorum lowered from 2 to 1/);
    expect(served.notes.join('\n')).toMatch(/ensemble only-sm is not served/);
  });

  it('leaves out a SageMaker shadow without an endpoint, and a canary to an ensemble not served', () => {
    const spec = (name: string, members: string[], extra: object = {}) => ({
      name,
      members,
      weights: members.map(() => 1),
      strategy: 'soft-vote' as const,
      quorum: 1,
      features: [],
      labels: [],
      ...extra,
    });
    const withShadow = {
      ...real,
      ensembles: new Map([
        [
          'live',
          spec('live', ['bc-logreg'], {
            shadow: ['bc-gradient-boosting', 'bc-mlp'],
            canary: { ensemble: 'sm-only', percent: 10 },
          }),
        ],
        ['sm-only', spec('sm-only', ['bc-gradient-boosting'])],
      ]),
    };
    const served = servedManifest(withShadow, new Map());
    const live = served.manifest.ensembles.get('live');
    expect(live?.members).toEqual(['bc-logreg']);
    expect(live?.shadow).toEqual(['bc-mlp']);
    expect(live?.canary).toBeUndefined();
    expect(served.notes.join('\n')).toMatch(/live: shadow member\(s\) bc-gradient-boosting left out/);
    expect(served.notes.join('\n')).toMatch(
      /live: canary sm-only is not served, so live serves all its traffic/,
    );
  });

  it('parses bare ids, id=endpoint pairs, spaces and empty parts', () => {
    expect(parseSageMakerMembers(undefined, real)).toEqual(new Map());
    expect(parseSageMakerMembers('', real)).toEqual(new Map());
    expect(parseSageMakerMembers(' bc-gradient-boosting ,', real)).toEqual(
      new Map([['bc-gradient-boosting', 'fanout-bc-gradient-boosting']]),
    );
    expect(parseSageMakerMembers('bc-gradient-boosting = prod-gb', real)).toEqual(
      new Map([['bc-gradient-boosting', 'prod-gb']]),
    );
  });

  it('rejects ids that are unknown or not SageMaker members, naming the variable', () => {
    expect(() => parseSageMakerMembers('bc-nope', real)).toThrow(ConfigError);
    expect(() => parseSageMakerMembers('bc-logreg', real)).toThrow(
      /FANOUT_SAGEMAKER_MEMBERS: "bc-logreg" is not a sagemaker model/,
    );
  });
});
