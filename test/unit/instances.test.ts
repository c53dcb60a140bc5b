import { ValidationError } from '../../functions/core/errors.js';
import { type InstanceProblem, validateInstances } from '../../functions/core/instances.js';

const FEATURES = ['alpha', 'beta', 'gamma'] as const;

/** Runs the validator and returns the ValidationError it must throw. */
function rejection(raw: unknown, field?: string): ValidationError {
  try {
    validateInstances(raw, FEATURES, field);
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    return err as ValidationError;
  }
  throw new Error('expected validateInstances to throw');
}

const details = (err: ValidationError) =>
  err.details as { field: string; problems?: InstanceProblem[]; problemCount?: number };

describe('validateInstances: accepted input', () => {
  it('returns arrays of numbers unchanged, one row per instance', () => {
    expect(
      validateInstances(
        [
          [1, 2, 3],
          [-4.5, 0, 1e-12],
        ],
        FEATURES,
      ),
    ).toEqual([
      [1, 2, 3],
      [-4.5, 0, 1e-12],
    ]);
  });

  it('returns objects keyed by feature name as rows in feature order, whatever the key order', () => {
    expect(validateInstances([{ gamma: 3, alpha: 1, beta: 2 }], FEATURES)).toEqual([[1, 2, 3]]);
  });

  it('accepts a mix of arrays and objects in one request', () => {
    expect(validateInstances([[7, 8, 9], { beta: 5, gamma: 6, alpha: 4 }], FEATURES)).toEqual([
      [7, 8, 9],
      [4, 5, 6],
    ]);
  });

  it('accepts the largest float32 magnitude', () => {
    const max = 3.4028234663852886e38;
    expect(validateInstances([[max, -max, 0]], FEATURES)).toEqual([[max, -max, 0]]);
  });
});

describe('validateInstances: the request as a whole', () => {
  it.each([
    ['an object', { alpha: 1 }, 'an object'],
    ['a string', 'hello', 'the string "hello"'],
    ['null', null, 'null'],
    ['a number', 42, 'number 42'],
  ])('rejects instances that are %s, naming the field and what it got', (_what, raw, described) => {
    const err = rejection(raw);
    expect(err.message).toBe(`instances must be an array of instances, got ${described}`);
    expect(details(err)).toEqual({ field: 'instances' });
  });

  it('rejects an empty list of instances', () => {
    const err = rejection([]);
    expect(err.message).toBe('instances must contain at least one instance');
    expect(details(err).field).toBe('instances');
  });

  it('names the caller’s field in messages (e.g. the batch or OIP input name)', () => {
    expect(rejection({}, 'inputs[0].data').message).toMatch(/^inputs\[0\]\.data must be an array/);
    expect(rejection([[1, 2]], 'rows').message).toMatch(/^rows\[0\]: /);
  });

  it('maps to HTTP 400 with the invalid_request code', () => {
    const err = rejection([]);
    expect(err.status).toBe(400);
    expect(err.code).toBe('invalid_request');
    expect(err.name).toBe('ValidationError');
  });
});

describe('validateInstances: one bad instance', () => {
  it('rejects an array of the wrong length, naming the instance and both counts', () => {
    const err = rejection([
      [1, 2, 3],
      [1, 2],
    ]);
    expect(err.message).toBe('instances[1]: expected 3 values in feature order, got 2');
    expect(details(err).problems).toEqual([
      { instance: 1, reason: 'expected 3 values in feature order, got 2' },
    ]);
  });

  it('rejects an array that is too long', () => {
    expect(rejection([[1, 2, 3, 4]]).message).toBe('instances[0]: expected 3 values in feature order, got 4');
  });

  it.each([
    ['a string', '2.5', 'the string "2.5"'],
    ['null', null, 'null'],
    ['a boolean', true, 'boolean true'],
    ['an object', { value: 2 }, 'an object'],
    ['an array', [2], 'an array of 1'],
  ])('rejects %s where a number belongs, naming the instance and the feature', (_what, value, described) => {
    const err = rejection([
      [1, 2, 3],
      [1, value, 3],
    ]);
    expect(err.message).toBe(`instances[1] field "beta": expected a number, got ${described}`);
    expect(details(err).problems).toEqual([
      { instance: 1, field: 'beta', reason: `expected a number, got ${described}` },
    ]);
  });

  it('does not echo a long string back to the client', () => {
    const long = 'x'.repeat(500);
    const err = rejection([[long, 2, 3]]);
    expect(err.message).toBe('instances[0] field "alpha": expected a number, got a string');
    expect(JSON.stringify(err.details)).not.toContain('xxxxxxxxxx');
  });

  it.each([
    [1e39, '1e+39'],
    [-1e39, '-1e+39'],
    [Number.MAX_VALUE, String(Number.MAX_VALUE)],
  ])('rejects %p, which is beyond the float32 range, naming the instance and the feature', (value, shown) => {
    const err = rejection([{ alpha: 1, beta: 2, gamma: value }]);
    expect(err.message).toBe(`instances[0] field "gamma": ${shown} is outside the float32 range models use`);
    expect(details(err).problems?.[0]).toMatchObject({ instance: 0, field: 'gamma' });
  });

  it.each([
    [Number.NaN, 'NaN'],
    [Number.POSITIVE_INFINITY, 'Infinity'],
  ])('rejects %p passed in-process (JSON cannot carry it), naming the feature', (value, shown) => {
    expect(rejection([[value, 2, 3]]).message).toBe(
      `instances[0] field "alpha": expected a finite number, got ${shown}`,
    );
  });

  it('rejects an object with a missing feature, naming the instance and the feature', () => {
    const err = rejection([[1, 2, 3], { alpha: 1, gamma: 3 }]);
    expect(err.message).toBe('instances[1] field "beta": missing feature');
    expect(details(err).problems).toEqual([{ instance: 1, field: 'beta', reason: 'missing feature' }]);
  });

  it('rejects an object with an unknown feature, naming the instance and the feature', () => {
    const err = rejection([{ alpha: 1, beta: 2, gamma: 3, delta: 4 }]);
    expect(err.message).toBe('instances[0] field "delta": unknown feature');
    expect(details(err).problems).toEqual([{ instance: 0, field: 'delta', reason: 'unknown feature' }]);
  });

  it('treats inherited property names as missing features, not as present', () => {
    const err = validateInstancesError([{ alpha: 1, beta: 2 }], ['alpha', 'beta', 'toString']);
    expect(err.message).toBe('instances[0] field "toString": missing feature');
  });

  it('rejects an object whose feature value is not a number, naming the feature', () => {
    expect(rejection([{ alpha: 1, beta: '2', gamma: 3 }]).message).toBe(
      'instances[0] field "beta": expected a number, got the string "2"',
    );
  });

  it.each([
    ['a number', 5, 'number 5'],
    ['a string', 'a,b,c', 'the string "a,b,c"'],
    ['null', null, 'null'],
    ['a boolean', false, 'boolean false'],
  ])('rejects an instance that is %s, naming the instance and both accepted forms', (_w, instance, described) => {
    const err = rejection([[1, 2, 3], [4, 5, 6], instance]);
    expect(err.message).toBe(
      `instances[2]: expected an array of 3 numbers or an object keyed by feature name, got ${described}`,
    );
    expect(details(err).problems).toEqual([
      {
        instance: 2,
        reason: `expected an array of 3 numbers or an object keyed by feature name, got ${described}`,
      },
    ]);
  });
});

describe('validateInstances: several problems', () => {
  it('names the first problem in the message, counts the rest, and lists all of them in details', () => {
    const err = rejection([[1, 'two', 3], { alpha: 1, delta: 0, gamma: null }, [1]]);
    expect(err.message).toBe(
      'instances[0] field "beta": expected a number, got the string "two" (and 4 more problems)',
    );
    expect(details(err)).toEqual({
      field: 'instances',
      problemCount: 5,
      problems: [
        { instance: 0, field: 'beta', reason: 'expected a number, got the string "two"' },
        { instance: 1, field: 'delta', reason: 'unknown feature' },
        { instance: 1, field: 'beta', reason: 'missing feature' },
        { instance: 1, field: 'gamma', reason: 'expected a number, got null' },
        { instance: 2, reason: 'expected 3 values in feature order, got 1' },
      ],
    });
  });

  it('says "1 more problem" in the singular', () => {
    expect(rejection([[1, 2, null], 'x']).message).toMatch(/\(and 1 more problem\)$/);
  });

  it('lists at most 20 problems but reports the full count', () => {
    const many = Array.from({ length: 30 }, () => [null, 2, 3]);
    const d = details(rejection(many));
    expect(d.problems).toHaveLength(20);
    expect(d.problemCount).toBe(30);
    expect(d.problems?.[19]).toEqual({ instance: 19, field: 'alpha', reason: 'expected a number, got null' });
  });
});

function validateInstancesError(raw: unknown, features: string[]): ValidationError {
  try {
    validateInstances(raw, features);
  } catch (err) {
    return err as ValidationError;
  }
  throw new Error('expected validateInstances to throw');
}
