import { JSONPath } from 'jsonpath-plus';
import { speedUpScalarPaths } from '../../local/jsonpath-speedup.js';

describe('speedUpScalarPaths', () => {
  beforeAll(() => speedUpScalarPaths());

  it('leaves jsonpath-plus results unchanged, scalars and objects alike', () => {
    const json = { a: 1, s: 'x', n: null, f: false, o: { b: [1, 2] } };
    expect(JSONPath({ path: '$.a', json, wrap: false })).toBe(1);
    expect(JSONPath({ path: '$.s', json, wrap: false })).toBe('x');
    expect(JSONPath({ path: '$.n', json, wrap: false })).toBeNull();
    expect(JSONPath({ path: '$.f', json, wrap: false })).toBe(false);
    expect(JSONPath({ path: '$.missing', json, wrap: false })).toBeUndefined();
    expect(JSONPath({ path: '$.o', json, wrap: false })).toEqual({ b: [1, 2] });
  });

  it('puts stack capture back before the call returns, so other errors keep their stack', () => {
    const limit = Error.stackTraceLimit;
    JSONPath({ path: '$.a', json: { a: 1 }, wrap: false });
    expect(Error.stackTraceLimit).toBe(limit);
    expect(new Error('after').stack).toMatch(/\n\s+at /);
  });

  it('restores stack capture by the next microtask even when no NewError follows', async () => {
    const limit = Error.stackTraceLimit;
    const direct = new (JSONPath as unknown as new (o: object) => { evaluate(o: object): unknown })({
      path: '$.a',
      json: { a: 1 },
      autostart: false,
      wrap: false,
    });
    expect(direct.evaluate({ path: '$.a', json: { a: 2 } })).toBe(2);
    await Promise.resolve();
    expect(Error.stackTraceLimit).toBe(limit);
  });

  it('is idempotent', () => {
    speedUpScalarPaths();
    expect(JSONPath({ path: '$.a', json: { a: 3 }, wrap: false })).toBe(3);
  });
});
