import { combine, type MemberInfo, type PredictionRecord } from '../../functions/core/combine.js';
import { QuorumNotMetError } from '../../functions/core/errors.js';
import type { EnsembleSpec } from '../../functions/core/manifest.js';
import { causeMessage, checkShape, normaliseOutcome } from '../../functions/core/outcomes.js';

const binary: EnsembleSpec = {
  name: 'binary',
  members: ['a', 'b', 'c'],
  weights: [1, 1, 1],
  strategy: 'soft-vote',
  quorum: 2,
  features: ['x', 'y'],
  labels: ['no', 'yes'],
};

const three: EnsembleSpec = {
  name: 'cultivars',
  members: ['lr', 'rf', 'mlp'],
  weights: [2, 2, 1],
  strategy: 'weighted-mean',
  quorum: 2,
  features: ['x'],
  labels: ['class_0', 'class_1', 'class_2'],
};

const info = (model: string): MemberInfo => ({ version: `manifest-${model}`, kind: 'onnx' });
const meta = { id: 'req-1', createdAt: '2026-11-27T10:00:00.000Z' };

/** A runner success as the Map state returns it. */
const ok = (model: string, probabilities: unknown, extra: Record<string, unknown> = {}) => ({
  model,
  version: '1.0.0',
  kind: 'onnx',
  status: 'ok',
  latencyMs: 1.25,
  probabilities,
  ...extra,
});

/** What Step Functions' Catch produces for a Lambda task that threw. */
const lambdaFailure = (model: string, errorType: string, errorMessage: string) => ({
  model,
  status: 'failed',
  error: {
    Error: errorType,
    Cause: JSON.stringify({
      errorType,
      errorMessage,
      trace: [
        `${errorType}: ${errorMessage}`,
        '    at OnnxScorer.session (/var/task/secret/path/index.mjs:1:2)',
      ],
    }),
  },
});

/** What Step Functions' Catch produces for States.Timeout. */
const timeout = (model: string) => ({
  model,
  status: 'timeout',
  error: { Error: 'States.Timeout', Cause: '' },
});

function quorumError(run: () => unknown): QuorumNotMetError {
  try {
    run();
  } catch (err) {
    expect(err).toBeInstanceOf(QuorumNotMetError);
    return err as QuorumNotMetError;
  }
  throw new Error('expected QuorumNotMetError');
}

const member = (record: PredictionRecord, model: string) => record.members.find((m) => m.model === model);

describe('combine: quorum met', () => {
  it('combines all members with the strategy and labels every prediction', () => {
    const record = combine(
      binary,
      [ok('a', [[0.9, 0.1]]), ok('b', [[0.6, 0.4]]), ok('c', [[0.3, 0.7]])],
      1,
      info,
      meta,
    );
    expect(record).toMatchObject({
      id: 'req-1',
      ensemble: 'binary',
      strategy: 'soft-vote',
      degraded: false,
      createdAt: '2026-11-27T10:00:00.000Z',
    });
    expect(record.predictions).toHaveLength(1);
    expect(record.predictions[0]?.label).toBe('no');
    expect(record.predictions[0]?.probabilities.no).toBeCloseTo(0.6, 12);
    expect(record.predictions[0]?.probabilities.yes).toBeCloseTo(0.4, 12);
  });

  it('reports every member in manifest order, with its kind, version, latency and own predictions', () => {
    const record = combine(
      binary,
      [ok('c', [[0.3, 0.7]]), ok('a', [[0.9, 0.1]]), ok('b', [[0.6, 0.4]])],
      1,
      info,
      meta,
    );
    expect(record.members.map((m) => m.model)).toEqual(['a', 'b', 'c']);
    expect(member(record, 'c')).toEqual({
      model: 'c',
      version: '1.0.0',
      kind: 'onnx',
      status: 'ok',
      latencyMs: 1.25,
      predictions: [{ label: 'yes', probabilities: { no: 0.3, yes: 0.7 } }],
    });
  });

  it('takes kind and version from the manifest when the result does not carry them', () => {
    const record = combine(
      binary,
      [
        { model: 'a', status: 'ok', probabilities: [[1, 0]] },
        ok('b', [[1, 0]], { kind: 'sagemaker', version: '7' }),
        timeout('c'),
      ],
      1,
      info,
      meta,
    );
    expect(member(record, 'a')).toMatchObject({ version: 'manifest-a', kind: 'onnx', latencyMs: 0 });
    expect(member(record, 'b')).toMatchObject({ version: '7', kind: 'sagemaker' });
    expect(member(record, 'c')).toMatchObject({ version: 'manifest-c', kind: 'onnx', status: 'timeout' });
  });

  it('ignores results for models that are not members', () => {
    const record = combine(
      binary,
      [ok('a', [[1, 0]]), ok('b', [[1, 0]]), ok('c', [[1, 0]]), ok('intruder', [[0, 1]])],
      1,
      info,
      meta,
    );
    expect(record.members.map((m) => m.model)).toEqual(['a', 'b', 'c']);
    expect(record.predictions[0]?.probabilities).toEqual({ no: 1, yes: 0 });
  });

  it('scores several rows', () => {
    const record = combine(
      binary,
      [
        ok('a', [
          [0.8, 0.2],
          [0.1, 0.9],
        ]),
        ok('b', [
          [0.6, 0.4],
          [0.3, 0.7],
        ]),
        ok('c', [
          [0.7, 0.3],
          [0.2, 0.8],
        ]),
      ],
      2,
      info,
      meta,
    );
    expect(record.predictions.map((p) => p.label)).toEqual(['no', 'yes']);
  });
});

describe('combine: degraded', () => {
  it('answers degraded when a member failed, with the failure parsed from the Lambda Cause', () => {
    const record = combine(
      binary,
      [
        ok('a', [[0.9, 0.1]]),
        lambdaFailure('b', 'ModelLoadError', 'b: cannot load /models/b.onnx: protobuf parsing failed'),
        ok('c', [[0.3, 0.7]]),
      ],
      1,
      info,
      meta,
    );
    expect(record.degraded).toBe(true);
    // Only the members that answered are combined: mean of a and c.
    expect(record.predictions[0]?.probabilities.no).toBeCloseTo(0.6, 12);
    expect(member(record, 'b')).toEqual({
      model: 'b',
      version: 'manifest-b',
      kind: 'onnx',
      status: 'failed',
      latencyMs: 0,
      error: { name: 'ModelLoadError', message: 'b: cannot load /models/b.onnx: protobuf parsing failed' },
    });
  });

  it('never lets a Lambda stack trace reach the record', () => {
    const record = combine(
      binary,
      [ok('a', [[1, 0]]), lambdaFailure('b', 'Error', 'kaboom'), ok('c', [[1, 0]])],
      1,
      info,
      meta,
    );
    const text = JSON.stringify(record);
    expect(text).not.toContain('trace');
    expect(text).not.toContain('/var/task');
    expect(text).not.toContain('    at ');
    expect(member(record, 'b')?.error).toEqual({ name: 'Error', message: 'b: kaboom' });
  });

  it('records timeouts with status timeout and failures with status failed', () => {
    const record = combine(
      { ...binary, quorum: 1 },
      [ok('a', [[1, 0]]), timeout('b'), lambdaFailure('c', 'ModelRunError', 'c: inference failed')],
      1,
      info,
      meta,
    );
    expect(member(record, 'b')).toMatchObject({
      status: 'timeout',
      error: { name: 'States.Timeout', message: 'b: did not answer within its timeout' },
    });
    expect(member(record, 'c')).toMatchObject({
      status: 'failed',
      error: { name: 'ModelRunError', message: 'c: inference failed' },
    });
  });

  it("says how long a timed-out member was given, and that its manifest's longer timeout was cut", () => {
    const withTimeouts = (model: string): MemberInfo => ({ ...info(model), timeoutSeconds: 60 });
    const record = combine(
      { ...binary, quorum: 1 },
      [ok('a', [[1, 0]]), { ...timeout('b'), timeoutSeconds: 26 }, { ...timeout('c'), timeoutSeconds: 60 }],
      1,
      withTimeouts,
      meta,
    );
    expect(member(record, 'b')?.error).toEqual({
      name: 'States.Timeout',
      message:
        'b: did not answer within 26 s, the most its caller could wait (its manifest timeout, 60 s, was cut to that)',
    });
    expect(member(record, 'c')?.error?.message).toBe('c: did not answer within its 60 s timeout');
    // The manifest's timeout only shapes the message: a record's member carries no new field.
    expect(Object.keys(member(record, 'b') ?? {}).sort()).toEqual([
      'error',
      'kind',
      'latencyMs',
      'model',
      'status',
      'version',
    ]);
  });

  it('counts a member whose result is missing entirely as failed, saying so', () => {
    const record = combine(binary, [ok('a', [[1, 0]]), ok('c', [[1, 0]])], 1, info, meta);
    expect(record.degraded).toBe(true);
    expect(member(record, 'b')).toMatchObject({
      status: 'failed',
      error: { name: 'MissingMemberResult', message: 'b: no result reached the ensemble step' },
    });
  });

  it.each([
    ['too few rows', [[0.5, 0.5]], 'returned 1 rows for 2 instances'],
    [
      'too many classes',
      [
        [0.2, 0.3, 0.5],
        [0.2, 0.3, 0.5],
      ],
      'row 0 is not 2 finite probabilities',
    ],
    [
      'a null probability',
      [
        [0.5, 0.5],
        [null, 0.5],
      ],
      'row 1 is not 2 finite probabilities',
    ],
    [
      'a string probability',
      [
        [0.5, 0.5],
        ['0.5', 0.5],
      ],
      'row 1 is not 2 finite probabilities',
    ],
    [
      'an infinite probability',
      [
        [Number.POSITIVE_INFINITY, 0],
        [0.5, 0.5],
      ],
      'row 0 is not 2 finite probabilities',
    ],
    ['a row that is not an array', [{ no: 0.5 }, [0.5, 0.5]], 'row 0 is not 2 finite probabilities'],
    ['no probabilities at all', undefined, 'returned no probabilities'],
    ['probabilities that are not a list', 'lots', 'returned no probabilities'],
  ])('turns a member that returned %s into a failure that says so', (_what, probabilities, problem) => {
    const good = [
      [0.9, 0.1],
      [0.2, 0.8],
    ];
    const record = combine(binary, [ok('a', good), ok('b', probabilities), ok('c', good)], 2, info, meta);
    expect(record.degraded).toBe(true);
    expect(member(record, 'b')).toEqual({
      model: 'b',
      version: '1.0.0',
      kind: 'onnx',
      status: 'failed',
      latencyMs: 1.25,
      error: { name: 'ModelRunError', message: `b: ${problem}` },
    });
    expect(record.predictions.map((p) => p.label)).toEqual(['no', 'yes']);
  });
});

describe('combine: quorum not met', () => {
  it('throws a QuorumNotMetError naming every failed member and why', () => {
    const err = quorumError(() =>
      combine(
        binary,
        [lambdaFailure('a', 'ModelLoadError', 'a: cannot load a.onnx'), timeout('b'), ok('c', [[1, 0]])],
        1,
        info,
        meta,
      ),
    );
    expect(err.message).toBe(
      'ensemble "binary": 1 of 3 members answered, quorum is 2; failed: ' +
        'a (failed: a: cannot load a.onnx); b (timeout: b: did not answer within its timeout)',
    );
    expect(err.details).toEqual({
      ensemble: 'binary',
      quorum: 2,
      answered: ['c'],
      failed: [
        { model: 'a', status: 'failed', error: { name: 'ModelLoadError', message: 'a: cannot load a.onnx' } },
        {
          model: 'b',
          status: 'timeout',
          error: { name: 'States.Timeout', message: 'b: did not answer within its timeout' },
        },
      ],
    });
  });

  it('names missing and malformed members too', () => {
    const err = quorumError(() => combine(binary, [ok('a', [[1, 0, 0]])], 1, info, meta));
    expect(err.message).toContain('a (failed: a: row 0 is not 2 finite probabilities)');
    expect(err.message).toContain('b (failed: b: no result reached the ensemble step)');
    expect(err.message).toContain('c (failed: c: no result reached the ensemble step)');
  });

  it('keeps the stack trace out of the error', () => {
    const err = quorumError(() =>
      combine(
        binary,
        [lambdaFailure('a', 'Error', 'a: x'), lambdaFailure('b', 'Error', 'b: y')],
        1,
        info,
        meta,
      ),
    );
    expect(JSON.stringify({ m: err.message, d: err.details })).not.toContain('/var/task');
  });
});

describe('combine: three classes', () => {
  it('combines a three-class weighted ensemble and labels every class', () => {
    const record = combine(
      three,
      [ok('lr', [[0.7, 0.2, 0.1]]), ok('rf', [[0.1, 0.8, 0.1]]), ok('mlp', [[0.1, 0.1, 0.8]])],
      1,
      info,
      meta,
    );
    // (2*0.7 + 2*0.1 + 0.1) / 5 = 0.34; (2*0.2 + 2*0.8 + 0.1) / 5 = 0.42; (0.2 + 0.2 + 0.8) / 5 = 0.24
    const p = record.predictions[0];
    expect(p?.label).toBe('class_1');
    expect(p?.probabilities.class_0).toBeCloseTo(0.34, 12);
    expect(p?.probabilities.class_1).toBeCloseTo(0.42, 12);
    expect(p?.probabilities.class_2).toBeCloseTo(0.24, 12);
    expect(member(record, 'mlp')?.predictions).toEqual([
      { label: 'class_2', probabilities: { class_0: 0.1, class_1: 0.1, class_2: 0.8 } },
    ]);
  });

  it('renormalises the weights over the members that answered', () => {
    const record = combine(
      three,
      [ok('lr', [[0.7, 0.2, 0.1]]), timeout('rf'), ok('mlp', [[0.1, 0.1, 0.8]])],
      1,
      info,
      meta,
    );
    // (2*0.7 + 0.1) / 3 = 0.5
    expect(record.degraded).toBe(true);
    expect(record.predictions[0]?.probabilities.class_0).toBeCloseTo(0.5, 12);
    expect(record.predictions[0]?.label).toBe('class_0');
  });

  it('fails a member that returned two classes for a three-class ensemble', () => {
    const record = combine(
      three,
      [ok('lr', [[0.5, 0.5]]), ok('rf', [[0.1, 0.8, 0.1]]), ok('mlp', [[0.1, 0.1, 0.8]])],
      1,
      info,
      meta,
    );
    expect(member(record, 'lr')?.error?.message).toBe('lr: row 0 is not 3 finite probabilities');
  });

  it('fails a member that gives logits instead of probabilities, so it cannot outvote the others', () => {
    const record = combine(
      binary,
      [ok('a', [[0.9, 0.1]]), ok('b', [[0.8, 0.2]]), ok('c', [[-3, 5]])],
      1,
      info,
      meta,
    );
    expect(member(record, 'c')).toMatchObject({
      status: 'failed',
      error: {
        name: 'ModelRunError',
        message:
          'c: row 0 is not probabilities: it has -3, outside 0..1 (-3, 5); a member must give one probability per label, e.g. with its softmax exported with it (README, "Exporting to ONNX")',
      },
    });
    // The two members that gave probabilities decide, and say so.
    expect(record.degraded).toBe(true);
    expect(record.predictions[0]?.label).toBe('no');
    expect(record.predictions[0]?.probabilities.no).toBeCloseTo(0.85, 12);
  });
});

describe('checkShape: what counts as probabilities', () => {
  const outcome = (rows: number[][]) => ({ model: 'm', status: 'ok' as const, probabilities: rows });
  it('takes float32 rounding (a sum off by 1e-6) and rows of 0s and 1s', () => {
    for (const rows of [[[0.3333333, 0.3333333, 0.3333334]], [[0.1000001, 0.9000005, 0]], [[1, 0, 0]]]) {
      expect(checkShape(outcome(rows), 1, 3).status).toBe('ok');
    }
  });

  it('names the first row that sums to something other than 1, with its values', () => {
    const failed = checkShape(
      outcome([
        [0.2, 0.3, 0.5],
        [0.2, 0.3, 0.4],
      ]),
      2,
      3,
    );
    expect(failed.error?.message).toMatch(
      /^m: row 1 is not probabilities: it sums to 0\.9, not 1 \(0\.2, 0\.3, 0\.4\); /,
    );
  });

  it('names a value above 1 even when the row sums to 1', () => {
    const failed = checkShape(outcome([[1.5, -0.5]]), 1, 2);
    expect(failed.error?.message).toMatch(
      /^m: row 0 is not probabilities: it has 1\.5, outside 0\.\.1 \(1\.5, -0\.5\)/,
    );
  });
});

describe('normaliseOutcome and causeMessage', () => {
  it('extracts errorMessage from a Lambda-shaped Cause and drops the trace', () => {
    const cause = JSON.stringify({ errorType: 'ModelRunError', errorMessage: 'm: bad', trace: ['at x'] });
    expect(causeMessage(cause)).toBe('m: bad');
  });

  it('falls back to "message" in a JSON Cause, and to the raw text otherwise', () => {
    expect(causeMessage('{"message":"from message"}')).toBe('from message');
    expect(causeMessage('  plain words  ')).toBe('plain words');
    expect(causeMessage('{not json')).toBe('{not json');
  });

  it('prefixes the model to a message that does not start with it', () => {
    expect(
      normaliseOutcome({ model: 'm', status: 'failed', error: { Error: 'E', Cause: 'oops' } }).error,
    ).toEqual({
      name: 'E',
      message: 'm: oops',
    });
  });

  it('says a member failed without a message when there is nothing to say', () => {
    expect(normaliseOutcome({ model: 'm', status: 'failed' }).error).toEqual({
      name: 'Error',
      message: 'm: failed without a message',
    });
  });

  it('accepts an error already in {name, message} form', () => {
    expect(
      normaliseOutcome({ model: 'm', status: 'failed', error: { name: 'UpstreamError', message: 'm: 500' } })
        .error,
    ).toEqual({ name: 'UpstreamError', message: 'm: 500' });
  });

  it("gives a timed-out member's seconds, keeps a cause that says more, and ignores a bad timeoutSeconds", () => {
    const timedOut = (extra: Record<string, unknown>, manifestSeconds?: number) =>
      normaliseOutcome({ model: 'm', status: 'timeout', ...extra }, 'unknown', () => manifestSeconds).error
        ?.message;
    expect(timedOut({ timeoutSeconds: 5, error: { Error: 'States.Timeout', Cause: '' } })).toBe(
      'm: did not answer within its 5 s timeout',
    );
    expect(timedOut({ timeoutSeconds: 5, error: { Error: 'States.Timeout' } }, 5)).toBe(
      'm: did not answer within its 5 s timeout',
    );
    expect(timedOut({ timeoutSeconds: 5, error: { Error: 'States.Timeout', Cause: 'States.Timeout' } })).toBe(
      'm: did not answer within its 5 s timeout',
    );
    expect(
      timedOut({ timeoutSeconds: 5, error: { Error: 'States.Timeout', Cause: 'heartbeat lost' } }, 9),
    ).toBe(
      'm: did not answer within 5 s, the most its caller could wait (its manifest timeout, 9 s, was cut to that): heartbeat lost',
    );
    for (const bad of [0, -1, '5', Number.NaN]) {
      expect(timedOut({ timeoutSeconds: bad, error: { Error: 'States.Timeout', Cause: '' } }, 9)).toBe(
        'm: did not answer within its timeout',
      );
    }
    // A failure is not a timeout, whatever it carries.
    expect(
      normaliseOutcome({ model: 'm', status: 'failed', timeoutSeconds: 5, error: { Error: 'E', Cause: 'x' } })
        .error?.message,
    ).toBe('m: x');
  });

  it('treats an unknown status as failed', () => {
    expect(normaliseOutcome({ model: 'm', status: 'weird' }).status).toBe('failed');
  });

  it('turns a result that is not an object into a failure of the fallback model', () => {
    expect(normaliseOutcome('nope', 'b')).toEqual({
      model: 'b',
      status: 'failed',
      error: { name: 'InvalidMemberResult', message: 'b: result was the string "nope"' },
    });
  });

  it('leaves a failed outcome untouched in the shape check', () => {
    const o = { model: 'm', status: 'failed' as const, error: { name: 'E', message: 'm: x' } };
    expect(checkShape(o, 3, 2)).toBe(o);
  });
});
