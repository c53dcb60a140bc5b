import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkOnnxFile } from '../../functions/adapters/model-checks.js';
import { ManifestError, NotFoundError } from '../../functions/core/errors.js';
import { getEnsemble, getModel, loadManifest, localOnnx } from '../../functions/core/manifest.js';
import { MODELS_DIR } from '../models/data.js';

const REAL = join(MODELS_DIR, 'manifest.json');

type Doc = Record<string, any>;

let dir: string;
let counter = 0;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'fanout-manifest-'));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** Writes `content` to a fresh file (loadManifest caches by path) and returns its path. */
function writeTemp(content: string | object, name = `manifest-${++counter}.json`): string {
  const path = join(dir, name);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content, null, 2));
  return path;
}

const model = (id: string, extra: Doc = {}): Doc => ({
  id,
  kind: 'onnx',
  file: `${id}.onnx`,
  version: '1.0.0',
  features: 'xy',
  labels: 'yesno',
  ...extra,
});

/** A small valid manifest: three members sharing feature and label sets, one soft-vote ensemble. */
function baseDoc(): Doc {
  return {
    featureSets: { xy: ['x', 'y'] },
    labelSets: { yesno: ['no', 'yes'] },
    models: [model('a'), model('b'), model('c')],
    ensembles: [{ name: 'trio', members: ['a', 'b', 'c'], strategy: 'soft-vote' }],
  };
}

/** Stacking meta-model for `members` over two labels. */
function meta(members: string[], labels = ['no', 'yes']): Doc {
  const width = members.length * labels.length;
  return {
    type: 'softmax-linear',
    members,
    labels,
    coef: labels.map(() => new Array(width).fill(0.5)),
    intercept: labels.map(() => 0),
    featureMeans: new Array(width).fill(0.5),
  };
}

/** Loads `doc` from a temp file and returns the ManifestError it must throw, plus the file's path. */
function failure(doc: Doc | string): { err: ManifestError; path: string } {
  const path = writeTemp(doc);
  try {
    loadManifest(path);
  } catch (err) {
    expect(err).toBeInstanceOf(ManifestError);
    return { err: err as ManifestError, path };
  }
  throw new Error('expected loadManifest to throw');
}

/** Asserts the error names the file and the field, in message and details. */
function expectNames(doc: Doc, field: string, reason: RegExp | string): void {
  const { err, path } = failure(doc);
  expect(err.message.startsWith(`${path}: ${field}: `)).toBe(true);
  expect(err.message).toMatch(reason);
  expect(err.details).toEqual({ file: path, field });
  expect(err.name).toBe('ManifestError');
  expect(err.code).toBe('invalid_manifest');
}

// Derived from the file itself, so a model added with `fanout models add` keeps these green.
describe('the manifest in models/, whatever it declares', () => {
  const manifest = loadManifest(REAL);
  const raw = JSON.parse(readFileSync(REAL, 'utf8')) as Doc;

  it('loads, and a second load returns the cached manifest', () => {
    expect(loadManifest(REAL)).toBe(manifest);
    expect(manifest.path).toBe(REAL);
  });

  it('declares every model of the file, each with its ONNX file there (a SageMaker one: its local file)', () => {
    expect([...manifest.models.keys()]).toEqual(raw.models.map((m: Doc) => m.id));
    for (const m of manifest.models.values()) {
      const file = m.kind === 'onnx' ? m.file : m.localFile;
      if (m.kind === 'sagemaker' && !file) continue;
      expect({ id: m.id, exists: existsSync(file as string) }).toEqual({ id: m.id, exists: true });
    }
  });

  it('passes the start check for every ONNX member and every SageMaker member served locally', () => {
    const problems = [...manifest.models.values()].flatMap((m) => {
      const onnx = localOnnx(m);
      const check = onnx ? checkOnnxFile(onnx, REAL) : undefined;
      return check && !check.ok ? [check.reason] : [];
    });
    expect(problems).toEqual([]);
  });

  it('resolves the shared feature and label sets by name', () => {
    for (const m of raw.models as Doc[]) {
      const spec = getModel(manifest, m.id);
      const features = typeof m.features === 'string' ? raw.featureSets[m.features] : m.features;
      const labels = typeof m.labels === 'string' ? raw.labelSets[m.labels] : m.labels;
      expect({ id: m.id, features: spec.features, labels: spec.labels }).toEqual({
        id: m.id,
        features,
        labels,
      });
    }
  });

  it('resolves every ensemble with its members, weights, features, labels and quorum', () => {
    expect([...manifest.ensembles.keys()]).toEqual(raw.ensembles.map((e: Doc) => e.name));
    for (const r of raw.ensembles as Doc[]) {
      const e = getEnsemble(manifest, r.name);
      const first = getModel(manifest, e.members[0] as string);
      expect(e.members).toEqual(r.members);
      expect(e.features).toEqual(first.features);
      expect(e.labels).toEqual(first.labels);
      expect(e.weights).toEqual(r.members.map((m: string) => r.weights?.[m] ?? 1));
      expect(e.quorum).toBe(r.quorum ?? Math.floor(r.members.length / 2) + 1);
      expect(e.strategy).toBe(r.strategy);
    }
  });

  it('resolves the shadow members and the canary of each ensemble as the file declares them', () => {
    for (const r of raw.ensembles as Doc[]) {
      const e = getEnsemble(manifest, r.name);
      expect({ name: r.name, shadow: e.shadow ?? [] }).toEqual({ name: r.name, shadow: r.shadow ?? [] });
      for (const s of e.shadow ?? []) expect(e.members).not.toContain(s);
      expect({ name: r.name, canary: e.canary }).toEqual({ name: r.name, canary: r.canary });
    }
  });

  it('loads a stacking meta-model trained on exactly the members of each stacked ensemble', () => {
    for (const e of manifest.ensembles.values()) {
      if (e.strategy !== 'stacking') continue;
      expect(e.stacking?.members).toEqual(e.members);
      expect(e.stacking?.coef).toHaveLength(e.labels.length);
      expect(e.stacking?.featureMeans).toHaveLength(e.members.length * e.labels.length);
    }
  });

  it('answers an unknown ensemble with a NotFoundError listing what is served', () => {
    const served = [...manifest.ensembles.keys()].join(', ');
    expect(() => getEnsemble(manifest, 'no-such-ensemble')).toThrow(NotFoundError);
    expect(() => getEnsemble(manifest, 'no-such-ensemble')).toThrow(
      `unknown ensemble "no-such-ensemble"; served: ${served}`,
    );
    expect(() => getModel(manifest, 'no-such-model')).toThrow('unknown model "no-such-model"');
  });
});

describe('loadManifest defaults', () => {
  it('defaults the quorum to a majority of the members', () => {
    const doc = baseDoc();
    doc.models.push(model('d'));
    doc.ensembles.push({ name: 'quad', members: ['a', 'b', 'c', 'd'], strategy: 'median' });
    doc.ensembles.push({ name: 'solo', members: ['a'], strategy: 'max' });
    doc.ensembles.push({ name: 'pair', members: ['a', 'b'], strategy: 'hard-vote' });
    const m = loadManifest(writeTemp(doc));
    expect(getEnsemble(m, 'trio').quorum).toBe(2);
    expect(getEnsemble(m, 'quad').quorum).toBe(3);
    expect(getEnsemble(m, 'solo').quorum).toBe(1);
    expect(getEnsemble(m, 'pair').quorum).toBe(2);
  });

  it('gives members without a weight a weight of 1, in members order', () => {
    const doc = baseDoc();
    doc.ensembles[0] = {
      name: 'trio',
      members: ['a', 'b', 'c'],
      strategy: 'weighted-mean',
      weights: { c: 3 },
    };
    expect(getEnsemble(loadManifest(writeTemp(doc)), 'trio').weights).toEqual([1, 1, 3]);
  });

  it('gives a member named like an Object property (constructor) the default weight of 1', () => {
    const doc = baseDoc();
    doc.models[0].id = 'constructor';
    doc.ensembles[0] = {
      name: 'trio',
      members: ['constructor', 'b', 'c'],
      strategy: 'weighted-mean',
      weights: { b: 2 },
    };
    expect(getEnsemble(loadManifest(writeTemp(doc)), 'trio').weights).toEqual([1, 2, 1]);
  });

  it('resolves model files relative to the manifest, fills timeout and memory, leaves input and output to detection', () => {
    const path = writeTemp(baseDoc());
    const a = getModel(loadManifest(path), 'a');
    expect(a).toMatchObject({
      file: join(dir, 'a.onnx'),
      manifestFile: 'a.onnx',
      featureSet: 'xy',
      labelSet: 'yesno',
      timeoutSeconds: 10,
      memoryMB: 1024,
    });
    expect(a).not.toHaveProperty('input');
    expect(a).not.toHaveProperty('output');
    const named = baseDoc();
    named.models[0] = model('a', { input: 'float_input', output: 'output_probability' });
    expect(getModel(loadManifest(writeTemp(named)), 'a')).toMatchObject({
      input: 'float_input',
      output: 'output_probability',
    });
  });

  it('accepts inline feature and label lists as well as set names', () => {
    const doc = baseDoc();
    doc.models = [model('a', { features: ['x', 'y'], labels: ['no', 'yes'] }), model('b'), model('c')];
    expect(getEnsemble(loadManifest(writeTemp(doc)), 'trio').features).toEqual(['x', 'y']);
  });
});

describe('loadManifest rejects an invalid manifest, naming the file and the field', () => {
  it('a file that is not JSON', () => {
    const { err, path } = failure('{"models": [');
    expect(err.message).toMatch(new RegExp(`^${escapeRegExp(path)}: not valid JSON: `));
  });

  it('a file that does not exist', () => {
    const path = join(dir, 'nowhere.json');
    expect(() => loadManifest(path)).toThrow(ManifestError);
    expect(() => loadManifest(path)).toThrow(`${path}: cannot read the manifest: `);
  });

  it('a document that is not an object', () => {
    expectNames([] as unknown as Doc, '(root)', /expected object/);
  });

  it('missing models', () => {
    const doc = baseDoc();
    delete doc.models;
    expectNames(doc, 'models', /expected array/);
  });

  it('an empty models list', () => {
    const doc = baseDoc();
    doc.models = [];
    expectNames(doc, 'models', /Too small/);
  });

  it('missing ensembles', () => {
    const doc = baseDoc();
    delete doc.ensembles;
    expectNames(doc, 'ensembles', /expected array/);
  });

  it('an ensemble naming an unknown member', () => {
    const doc = baseDoc();
    doc.ensembles[0].members = ['a', 'b', 'svm'];
    expectNames(doc, 'ensembles[0].members[2]', 'unknown model "svm"');
  });

  it('an ensemble listing a member twice', () => {
    const doc = baseDoc();
    doc.ensembles[0].members = ['a', 'b', 'a'];
    expectNames(doc, 'ensembles[0].members[2]', 'duplicate member "a"');
  });

  it('duplicate model ids', () => {
    const doc = baseDoc();
    doc.models[2].id = 'a';
    expectNames(doc, 'models[2].id', 'duplicate model id "a"');
  });

  it('duplicate ensemble names', () => {
    const doc = baseDoc();
    doc.ensembles.push({ ...doc.ensembles[0] });
    expectNames(doc, 'ensembles[1].name', 'duplicate ensemble name "trio"');
  });

  it('an ensemble named like a model', () => {
    const doc = baseDoc();
    doc.ensembles[0].name = 'b';
    expectNames(doc, 'ensembles[0].name', '"b" is also a model id');
  });

  it('a member with other features than the first member', () => {
    const doc = baseDoc();
    doc.models[1].features = ['y', 'x'];
    expectNames(doc, 'ensembles[0].members[1]', '"b" has other features than "a"');
  });

  it('a member with other labels than the first member', () => {
    const doc = baseDoc();
    doc.models[2].labels = ['no', 'yes', 'maybe'];
    expectNames(doc, 'ensembles[0].members[2]', '"c" has other labels than "a"');
  });

  it('weights naming a model that is not a member', () => {
    const doc = baseDoc();
    doc.models.push(model('d'));
    doc.ensembles[0] = { ...doc.ensembles[0], strategy: 'weighted-mean', weights: { a: 1, d: 2 } };
    expectNames(doc, 'ensembles[0].weights.d', '"d" is not a member');
  });

  it('a non-positive weight', () => {
    const doc = baseDoc();
    doc.ensembles[0].weights = { a: 0 };
    expectNames(doc, 'ensembles[0].weights.a', /Too small/);
  });

  it('weighted-mean without weights', () => {
    const doc = baseDoc();
    doc.ensembles[0].strategy = 'weighted-mean';
    expectNames(doc, 'ensembles[0].weights', 'required by strategy weighted-mean');
  });

  it('stacking without a meta-model file', () => {
    const doc = baseDoc();
    doc.ensembles[0].strategy = 'stacking';
    expectNames(doc, 'ensembles[0].stacking', 'required by strategy stacking');
  });

  it('a stacking meta-model file that does not exist', () => {
    const doc = baseDoc();
    doc.ensembles[0] = { ...doc.ensembles[0], strategy: 'stacking', stacking: { file: 'absent-meta.json' } };
    expectNames(doc, 'ensembles[0].stacking.file', /cannot read absent-meta\.json/);
  });

  it('a stacking meta-model trained for other members', () => {
    writeTemp(meta(['a', 'b']), 'meta-ab.json');
    const doc = baseDoc();
    doc.ensembles[0] = { ...doc.ensembles[0], strategy: 'stacking', stacking: { file: 'meta-ab.json' } };
    expectNames(
      doc,
      'ensembles[0].stacking.file',
      'meta-ab.json: was trained on members [a, b], the ensemble lists [a, b, c]',
    );
  });

  it('a stacking meta-model for other labels', () => {
    writeTemp(meta(['a', 'b', 'c'], ['yes', 'no']), 'meta-labels.json');
    const doc = baseDoc();
    doc.ensembles[0] = { ...doc.ensembles[0], strategy: 'stacking', stacking: { file: 'meta-labels.json' } };
    expectNames(doc, 'ensembles[0].stacking.file', "labels do not match the members' labels");
  });

  it('a stacking meta-model whose coefficients have the wrong width', () => {
    const bad = meta(['a', 'b', 'c']);
    bad.coef = [
      [1, 2],
      [3, 4],
    ];
    writeTemp(bad, 'meta-width.json');
    const doc = baseDoc();
    doc.ensembles[0] = { ...doc.ensembles[0], strategy: 'stacking', stacking: { file: 'meta-width.json' } };
    expectNames(doc, 'ensembles[0].stacking.file', 'coef must be 2 rows of 6 numbers');
  });

  it('accepts a matching stacking meta-model', () => {
    writeTemp(meta(['a', 'b', 'c']), 'meta-abc.json');
    const doc = baseDoc();
    doc.ensembles[0] = { ...doc.ensembles[0], strategy: 'stacking', stacking: { file: 'meta-abc.json' } };
    expect(getEnsemble(loadManifest(writeTemp(doc)), 'trio').stacking?.members).toEqual(['a', 'b', 'c']);
  });

  it('a shadow member that is also a counted member', () => {
    const doc = baseDoc();
    doc.ensembles[0].shadow = ['b'];
    expectNames(doc, 'ensembles[0].shadow[0]', '"b" is also a counted member');
  });

  it('an unknown shadow member', () => {
    const doc = baseDoc();
    doc.ensembles[0].shadow = ['svm'];
    expectNames(doc, 'ensembles[0].shadow[0]', 'unknown model "svm"');
  });

  it('a shadow member listed twice', () => {
    const doc = baseDoc();
    doc.models.push(model('d'));
    doc.ensembles[0].shadow = ['d', 'd'];
    expectNames(doc, 'ensembles[0].shadow[1]', 'duplicate shadow member "d"');
  });

  it('a shadow member with other features than the members', () => {
    const doc = baseDoc();
    doc.models.push(model('d', { features: ['y', 'x'] }));
    doc.ensembles[0].shadow = ['d'];
    expectNames(doc, 'ensembles[0].shadow[0]', '"d" has other features than the members');
  });

  it('a shadow member with other labels than the members', () => {
    const doc = baseDoc();
    doc.models.push(model('d', { labels: ['yes', 'no'] }));
    doc.ensembles[0].shadow = ['d'];
    expectNames(doc, 'ensembles[0].shadow[0]', '"d" has other labels than the members');
  });

  it('a weight for a shadow member', () => {
    const doc = baseDoc();
    doc.models.push(model('d'));
    doc.ensembles[0] = {
      ...doc.ensembles[0],
      strategy: 'weighted-mean',
      weights: { a: 1, d: 2 },
      shadow: ['d'],
    };
    expectNames(doc, 'ensembles[0].weights.d', '"d" is a shadow member; shadows are never counted');
  });

  it('a misspelt ensemble key such as "shadows"', () => {
    const doc = baseDoc();
    doc.ensembles[0].shadows = ['a'];
    expectNames(doc, 'ensembles[0]', /Unrecognized key: "shadows"/);
  });

  it('a canary to an unknown ensemble', () => {
    const doc = baseDoc();
    doc.ensembles[0].canary = { ensemble: 'trio-v2', percent: 10 };
    expectNames(doc, 'ensembles[0].canary.ensemble', 'unknown ensemble "trio-v2"; ensembles: trio');
  });

  it('a canary to the ensemble itself', () => {
    const doc = baseDoc();
    doc.ensembles[0].canary = { ensemble: 'trio', percent: 10 };
    expectNames(doc, 'ensembles[0].canary.ensemble', '"trio" cannot be its own canary');
  });

  it.each([-1, 100.5, '10'])('a canary percent of %p', (percent) => {
    const doc = baseDoc();
    doc.ensembles.push({ name: 'duo', members: ['a', 'b'], strategy: 'soft-vote' });
    doc.ensembles[0].canary = { ensemble: 'duo', percent };
    expectNames(doc, 'ensembles[0].canary.percent', /from 0 to 100/);
  });

  it('a canary without a percent', () => {
    const doc = baseDoc();
    doc.ensembles.push({ name: 'duo', members: ['a', 'b'], strategy: 'soft-vote' });
    doc.ensembles[0].canary = { ensemble: 'duo' };
    expectNames(doc, 'ensembles[0].canary.percent', /from 0 to 100/);
  });

  it('a canary whose ensemble takes other features', () => {
    const doc = baseDoc();
    doc.models.push(model('d', { features: ['x', 'y', 'z'] }));
    doc.ensembles.push({ name: 'wide', members: ['d'], strategy: 'soft-vote' });
    doc.ensembles[0].canary = { ensemble: 'wide', percent: 5 };
    expectNames(doc, 'ensembles[0].canary.ensemble', '"wide" takes other features than "trio"');
  });

  it('a canary whose ensemble answers with other labels', () => {
    const doc = baseDoc();
    doc.models.push(model('d', { labels: ['no', 'yes', 'maybe'] }));
    doc.ensembles.push({ name: 'three-way', members: ['d'], strategy: 'soft-vote' });
    doc.ensembles[0].canary = { ensemble: 'three-way', percent: 5 };
    expectNames(doc, 'ensembles[0].canary.ensemble', '"three-way" answers with other labels than "trio"');
  });

  it('a chain of canaries, and a cycle', () => {
    const doc = baseDoc();
    doc.ensembles.push({ name: 'duo', members: ['a', 'b'], strategy: 'soft-vote' });
    doc.ensembles.push({ name: 'solo', members: ['c'], strategy: 'soft-vote' });
    doc.ensembles[0].canary = { ensemble: 'duo', percent: 5 };
    doc.ensembles[1].canary = { ensemble: 'solo', percent: 5 };
    expectNames(doc, 'ensembles[0].canary.ensemble', '"duo" has a canary of its own ("solo")');
    doc.ensembles[1].canary = { ensemble: 'trio', percent: 5 };
    expectNames(doc, 'ensembles[0].canary.ensemble', '"duo" has a canary of its own ("trio")');
  });

  it('accepts shadows and a canary, keeping shadows out of the default quorum and the weights', () => {
    const doc = baseDoc();
    doc.models.push(model('d'), model('e'));
    doc.ensembles[0].shadow = ['d', 'e'];
    doc.ensembles[0].canary = { ensemble: 'quad', percent: 12.5 };
    doc.ensembles.push({ name: 'quad', members: ['a', 'b', 'c', 'd'], strategy: 'soft-vote' });
    const m = loadManifest(writeTemp(doc));
    expect(getEnsemble(m, 'trio')).toMatchObject({
      members: ['a', 'b', 'c'],
      shadow: ['d', 'e'],
      weights: [1, 1, 1],
      quorum: 2,
      canary: { ensemble: 'quad', percent: 12.5 },
    });
    expect(getEnsemble(m, 'quad').shadow).toBeUndefined();
  });

  it('a quorum above the member count', () => {
    const doc = baseDoc();
    doc.ensembles[0].quorum = 4;
    expectNames(doc, 'ensembles[0].quorum', '4 exceeds the 3 members');
  });

  it('a quorum of zero', () => {
    const doc = baseDoc();
    doc.ensembles[0].quorum = 0;
    expectNames(doc, 'ensembles[0].quorum', /Too small/);
  });

  it('a reference to an unknown featureSets entry', () => {
    const doc = baseDoc();
    doc.models[1].features = 'xyz';
    expectNames(doc, 'models[1].features', 'unknown featureSets entry "xyz"');
  });

  it('a reference to a featureSets entry named like an Object property, as unknown rather than crashing', () => {
    const doc = baseDoc();
    doc.models[0].features = 'toString';
    expectNames(doc, 'models[0].features', 'unknown featureSets entry "toString"');
  });

  it('a reference to a labelSets entry named __proto__, as unknown rather than crashing', () => {
    const doc = baseDoc();
    doc.models[1].labels = '__proto__';
    expectNames(doc, 'models[1].labels', 'unknown labelSets entry "__proto__"');
  });

  it('a reference to an unknown labelSets entry', () => {
    const doc = baseDoc();
    doc.models[0].labels = 'colours';
    expectNames(doc, 'models[0].labels', 'unknown labelSets entry "colours"');
  });

  it('a feature listed twice', () => {
    const doc = baseDoc();
    doc.models[0].features = ['x', 'x'];
    expectNames(doc, 'models[0].features', 'duplicate name "x"');
  });

  it('a model with a single label', () => {
    const doc = baseDoc();
    doc.models[0].labels = ['yes'];
    expectNames(doc, 'models[0].labels', 'needs at least two labels');
  });

  it('a model of an unknown kind', () => {
    const doc = baseDoc();
    doc.models[1].kind = 'tensorflow';
    expectNames(doc, 'models[1].kind', 'kind must be "onnx" or "sagemaker"');
  });

  it('an ONNX model whose file is not a .onnx file', () => {
    const doc = baseDoc();
    doc.models[0].file = 'a.pt';
    expectNames(doc, 'models[0].file', 'must name a .onnx file');
  });

  it('a model id that is not a slug', () => {
    const doc = baseDoc();
    doc.models[1].id = 'Bad_Id';
    expectNames(doc, 'models[1].id', 'must be lowercase letters, digits and dashes');
  });

  it('an ensemble name that is not a slug', () => {
    const doc = baseDoc();
    doc.ensembles[0].name = 'Breast Cancer';
    expectNames(doc, 'ensembles[0].name', 'must be lowercase letters, digits and dashes');
  });

  it('an unknown strategy', () => {
    const doc = baseDoc();
    doc.ensembles[0].strategy = 'vote';
    expectNames(doc, 'ensembles[0].strategy', /expected one of "soft-vote"/);
  });

  it('a timeout beyond five minutes', () => {
    const doc = baseDoc();
    doc.models[0].timeoutSeconds = 301;
    expectNames(doc, 'models[0].timeoutSeconds', /Too big/);
  });

  it('a result cache without its TTL (or with a misspelt one)', () => {
    const doc = baseDoc();
    doc.ensembles[0].cache = { ttl: 60 };
    expectNames(doc, 'ensembles[0].cache.ttlSeconds', 'is required (seconds)');
  });

  it('a result cache TTL that is not a whole number of seconds', () => {
    const doc = baseDoc();
    doc.ensembles[0].cache = { ttlSeconds: 1.5 };
    expectNames(doc, 'ensembles[0].cache.ttlSeconds', 'must be a whole number of seconds');
    doc.ensembles[0].cache = { ttlSeconds: '3600' };
    expectNames(doc, 'ensembles[0].cache.ttlSeconds', 'must be a whole number of seconds');
  });

  it('a result cache TTL below one second or above a year', () => {
    const doc = baseDoc();
    doc.ensembles[0].cache = { ttlSeconds: 0 };
    expectNames(doc, 'ensembles[0].cache.ttlSeconds', 'must be at least 1 second');
    doc.ensembles[0].cache = { ttlSeconds: 31_536_001 };
    expectNames(doc, 'ensembles[0].cache.ttlSeconds', 'must be at most 31536000 seconds (one year)');
  });

  it('a result cache with an unknown setting', () => {
    const doc = baseDoc();
    doc.ensembles[0].cache = { ttlSeconds: 60, maxEntries: 10 };
    expectNames(doc, 'ensembles[0].cache', /Unrecognized key: "maxEntries"/);
  });

  it('a result cache that is not an object', () => {
    const doc = baseDoc();
    doc.ensembles[0].cache = true;
    expectNames(doc, 'ensembles[0].cache', /expected object/);
  });
});

describe('the result cache setting', () => {
  it('is off unless an ensemble asks for it, and carries the TTL when it does', () => {
    const doc = baseDoc();
    doc.ensembles.push({ ...doc.ensembles[0], name: 'cached-trio', cache: { ttlSeconds: 600 } });
    const m = loadManifest(writeTemp(doc));
    expect(m.ensembles.get('trio')?.cache).toBeUndefined();
    expect(m.ensembles.get('cached-trio')?.cache).toEqual({ ttlSeconds: 600 });
  });
});

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
