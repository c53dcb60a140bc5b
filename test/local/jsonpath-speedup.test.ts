import { createRequire } from 'node:module';
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

  it('answers member chains as jsonpath-plus does (its CommonJS copy, left as it is, is the reference)', () => {
    const plain = (createRequire(import.meta.url)('jsonpath-plus') as { JSONPath: typeof JSONPath }).JSONPath;
    expect(plain).not.toBe(JSONPath);
    const list = [1, { a: 2 }];
    const json = {
      a: { b: { c: 1 }, zero: 0, empty: '', no: false, nil: null, list, s: 'text' },
      top: 'x',
      Map: { Item: { Value: { model: 'm' } } },
      inherited: Object.create({ hidden: 1 }),
    };
    const paths = [
      '$.a',
      '$.a.b',
      '$.a.b.c',
      '$.a.b.missing',
      '$.a.zero',
      '$.a.zero.x',
      '$.a.empty',
      '$.a.no',
      '$.a.nil',
      '$.a.nil.x',
      '$.a.list',
      '$.a.list.length',
      '$.a.s.length',
      '$.a.s.x',
      '$.top',
      '$.Map.Item.Value.model',
      '$.inherited.hidden',
      '$.toString',
      '$.constructor',
    ];
    for (const doc of [json, [json], 0, '', null, 'str', 5]) {
      for (const path of paths) {
        expect([path, JSONPath({ path, json: doc as never, wrap: false })]).toEqual([
          path,
          plain({ path, json: doc as never, wrap: false }),
        ]);
      }
    }
    expect(JSONPath({ path: '$.a.list', json, wrap: false })).toBe(list);
    // Paths and calls that are not plain member chains still go through jsonpath-plus.
    expect(JSONPath({ path: '$.a.list[1].a', json, wrap: false })).toBe(2);
    expect(JSONPath({ path: '$.a.list[*]', json, wrap: false })).toEqual(list);
    expect(JSONPath({ path: '$.a.b', json })).toEqual([{ c: 1 }]);
    expect(JSONPath({ path: '$.a.missing', json })).toEqual([]);
    expect(JSONPath({ path: '$.a.b', json, wrap: false, resultType: 'path' })).toBe("$['a']['b']");
  });
});
