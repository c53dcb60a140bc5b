import {
  type CsvLayout,
  csvField,
  csvLayout,
  formatOf,
  looksBinary,
  parseCsvRow,
  parseJsonlRow,
  splitCsvLine,
} from '../../functions/core/batch-rows.js';
import { readLines } from '../../functions/core/lines.js';

const FEATURES = ['a', 'b', 'c'];

function layoutOf(header: string, features: readonly string[] = FEATURES): CsvLayout {
  const layout = csvLayout(header, features);
  if ('error' in layout) throw new Error(`unexpected header error: ${layout.error}`);
  return layout;
}

function errorOf(header: string, features: readonly string[] = FEATURES): string {
  const layout = csvLayout(header, features);
  if (!('error' in layout)) throw new Error(`header "${header}" was accepted`);
  return layout.error;
}

async function* chunks(...parts: (string | Uint8Array)[]): AsyncGenerator<string | Uint8Array> {
  for (const p of parts) yield p;
}

async function collect(source: AsyncIterable<string | Uint8Array>) {
  const out: { line: number; text: string }[] = [];
  for await (const l of readLines(source)) out.push(l);
  return out;
}

describe('formatOf', () => {
  it('maps .csv to csv and .jsonl/.ndjson to jsonl, whatever the case', () => {
    expect(formatOf('incoming/wine/a.csv')).toBe('csv');
    expect(formatOf('incoming/wine/A.CSV')).toBe('csv');
    expect(formatOf('incoming/wine/a.jsonl')).toBe('jsonl');
    expect(formatOf('incoming/wine/a.NDJSON')).toBe('jsonl');
  });

  it('rejects other extensions', () => {
    expect(formatOf('incoming/wine/a.txt')).toBeUndefined();
    expect(formatOf('incoming/wine/a.csv.gz')).toBeUndefined();
    expect(formatOf('incoming/wine/csv')).toBeUndefined();
  });
});

describe('splitCsvLine', () => {
  it('splits plain fields, keeping empty ones', () => {
    expect(splitCsvLine('1,2.5,x')).toEqual(['1', '2.5', 'x']);
    expect(splitCsvLine('a,,b,')).toEqual(['a', '', 'b', '']);
    expect(splitCsvLine('')).toEqual(['']);
  });

  it('keeps commas inside quoted fields', () => {
    expect(splitCsvLine('"a,b",c')).toEqual(['a,b', 'c']);
  });

  it('turns a doubled quote inside a quoted field into one quote', () => {
    expect(splitCsvLine('"say ""hi""",x')).toEqual(['say "hi"', 'x']);
    expect(splitCsvLine('""""')).toEqual(['"']);
    expect(splitCsvLine('"",1')).toEqual(['', '1']);
  });

  it('treats a quote in the middle of an unquoted field as a literal character', () => {
    expect(splitCsvLine('a"b,c')).toEqual(['a"b', 'c']);
  });

  it('returns undefined for an unterminated quote', () => {
    expect(splitCsvLine('"abc,d')).toBeUndefined();
    expect(splitCsvLine('1,"2,3')).toBeUndefined();
    expect(splitCsvLine('"a""')).toBeUndefined();
  });
});

describe('csvLayout', () => {
  it('accepts the features in any order with an id column anywhere', () => {
    const layout = layoutOf('c,id,a,b');
    expect(layout.columns).toBe(4);
    expect(layout.idColumn).toBe(1);
    expect(layout.featureColumns).toEqual([2, 3, 0]);
    expect(layout.names).toEqual(['c', 'id', 'a', 'b']);
  });

  it('accepts a header without an id column', () => {
    const layout = layoutOf('b,a,c');
    expect(layout.idColumn).toBeUndefined();
    expect(layout.columns).toBe(3);
    expect(layout.featureColumns).toEqual([1, 0, 2]);
  });

  it('ignores a UTF-8 byte order mark and spaces around names', () => {
    const layout = layoutOf('\uFEFFid , a,b ,c');
    expect(layout.idColumn).toBe(0);
    expect(layout.featureColumns).toEqual([1, 2, 3]);
  });

  it('accepts quoted feature names that contain commas', () => {
    const layout = layoutOf('"x,y",a', ['a', 'x,y']);
    expect(layout.featureColumns).toEqual([1, 0]);
  });

  it('rejects a column named twice, naming it', () => {
    expect(errorOf('a,b,a,c')).toBe('header names column "a" twice');
    expect(errorOf('id,a,b,c,id')).toBe('header names column "id" twice');
  });

  it('names the missing feature columns', () => {
    const error = errorOf('id,a');
    expect(error).toContain('missing feature column(s) "b", "c"');
    expect(error).toContain('expected the 3 feature names and an optional "id"');
    expect(error).not.toContain('unknown');
  });

  it('names the unknown columns', () => {
    const error = errorOf('a,b,c,weight');
    expect(error).toContain('unknown column(s) "weight"');
    expect(error).not.toContain('missing');
  });

  it('names both missing and unknown columns (a misspelt feature)', () => {
    expect(errorOf('a,B,c')).toBe(
      'header missing feature column(s) "b"; unknown column(s) "B"; expected the 3 feature names and an optional "id"',
    );
  });

  it('shortens long lists to five names and a count', () => {
    const features = Array.from({ length: 8 }, (_, i) => `f${i}`);
    expect(errorOf('id', features)).toContain(
      'missing feature column(s) "f0", "f1", "f2", "f3", "f4" and 3 more',
    );
  });

  it('rejects a data row used as a header (numbers are unknown columns)', () => {
    expect(errorOf('1.5,2,3')).toMatch(
      /missing feature column\(s\) "a", "b", "c"; unknown column\(s\) "1.5"/,
    );
  });

  it('rejects a header with an unterminated quote', () => {
    expect(errorOf('"a,b,c')).toBe('header line has an unterminated quote');
  });
});

describe('parseCsvRow', () => {
  const layout = layoutOf('c,id,a,b');

  it('returns the features in manifest order with the row id and line', () => {
    expect(parseCsvRow('3,r-1,1,2', 7, layout, FEATURES)).toEqual({
      line: 7,
      id: 'r-1',
      features: [1, 2, 3],
    });
  });

  it('accepts signs, decimals, exponents, spaces and quoted numbers', () => {
    expect(parseCsvRow(' -3 ,r,"1.5",2e-3', 2, layout, FEATURES)).toEqual({
      line: 2,
      id: 'r',
      features: [1.5, 0.002, -3],
    });
  });

  it('keeps a quoted id with a comma and a quote', () => {
    expect(parseCsvRow('3,"a,""b""",1,2', 2, layout, FEATURES)).toMatchObject({ id: 'a,"b"' });
  });

  it('uses the line number as the id without an id column or with an empty id', () => {
    expect(parseCsvRow('1,2,3', 9, layoutOf('a,b,c'), FEATURES)).toEqual({
      line: 9,
      id: '9',
      features: [1, 2, 3],
    });
    expect(parseCsvRow('3, ,1,2', 4, layout, FEATURES)).toMatchObject({ id: '4' });
  });

  it('reports a row with too few or too many columns, with its id', () => {
    expect(parseCsvRow('3,r,1', 5, layout, FEATURES)).toEqual({
      line: 5,
      id: 'r',
      reason: 'expected 4 columns, got 3',
    });
    expect(parseCsvRow('3,r,1,2,9', 6, layout, FEATURES)).toEqual({
      line: 6,
      id: 'r',
      reason: 'expected 4 columns, got 5',
    });
  });

  it('reports an empty or blank value naming the column', () => {
    expect(parseCsvRow('3,r,,2', 5, layout, FEATURES)).toEqual({
      line: 5,
      id: 'r',
      reason: 'column "a": empty value',
    });
    expect(parseCsvRow('3,r,1,  ', 5, layout, FEATURES)).toMatchObject({ reason: 'column "b": empty value' });
  });

  it('reports a non-numeric value naming the column and the value', () => {
    expect(parseCsvRow('3,r,1,abc', 5, layout, FEATURES)).toEqual({
      line: 5,
      id: 'r',
      reason: 'column "b": the string "abc" is not a decimal number',
    });
  });

  it.each(['Infinity', '-Infinity', 'NaN', '1,5'])('rejects %j as a value', (raw) => {
    const row = parseCsvRow(`3,r,1,"${raw}"`, 5, layout, FEATURES);
    expect(row).toMatchObject({ line: 5, reason: expect.stringContaining('is not a decimal number') });
    expect(row).not.toHaveProperty('features');
  });

  it('does not echo a long value back in the reason', () => {
    const long = 'x'.repeat(500);
    const row = parseCsvRow(`3,r,1,${long}`, 5, layout, FEATURES);
    expect(row).toMatchObject({ reason: 'column "b": a string is not a decimal number' });
  });

  it('rejects a value outside the float32 range the models use, as the JSON Lines path does', () => {
    const csv = parseCsvRow('3,r,1,1e39', 5, layout, FEATURES);
    const jsonl = parseJsonlRow('{"id":"r","features":[1,1e39,3]}', 5, FEATURES);
    expect(jsonl).toMatchObject({ reason: 'feature "b": 1e+39 is outside the float32 range models use' });
    expect(csv).not.toHaveProperty('features');
    expect(csv).toMatchObject({ line: 5, id: 'r', reason: expect.stringContaining('float32') });
  });

  it('reports an unterminated quote', () => {
    expect(parseCsvRow('3,"r,1,2', 5, layout, FEATURES)).toEqual({ line: 5, reason: 'unterminated quote' });
  });
});

describe('parseJsonlRow', () => {
  it('accepts features as an array in feature order', () => {
    expect(parseJsonlRow('{"id":"x1","features":[1,2,3]}', 3, FEATURES)).toEqual({
      line: 3,
      id: 'x1',
      features: [1, 2, 3],
    });
  });

  it('accepts features as an object in any key order', () => {
    expect(parseJsonlRow('{"features":{"c":3,"a":1,"b":2},"id":"x"}', 3, FEATURES)).toEqual({
      line: 3,
      id: 'x',
      features: [1, 2, 3],
    });
  });

  it('turns a numeric id into a string and defaults a missing id to the line number', () => {
    expect(parseJsonlRow('{"id":42,"features":[1,2,3]}', 3, FEATURES)).toMatchObject({ id: '42' });
    expect(parseJsonlRow('{"features":[1,2,3]}', 8, FEATURES)).toMatchObject({ id: '8' });
  });

  it('reports a line that is not JSON', () => {
    expect(parseJsonlRow('{"id": "x", "features": [1, 2', 4, FEATURES)).toEqual({
      line: 4,
      reason: expect.stringMatching(/^not valid JSON: /),
    });
  });

  it.each([
    ['[1,2,3]', 'an array of 3'],
    ['5', 'number 5'],
    ['null', 'null'],
    ['"row"', 'the string "row"'],
  ])('reports a record that is not an object (%s)', (text, what) => {
    expect(parseJsonlRow(text, 4, FEATURES)).toEqual({
      line: 4,
      reason: `expected an object {"id"?, "features"}, got ${what}`,
    });
  });

  it.each([
    ['true', 'boolean true'],
    ['null', 'null'],
    ['{"n":1}', 'an object'],
    ['[1]', 'an array of 1'],
  ])('reports an id that is neither a string nor a number (%s)', (id, what) => {
    expect(parseJsonlRow(`{"id":${id},"features":[1,2,3]}`, 4, FEATURES)).toEqual({
      line: 4,
      reason: `"id" must be a string or a number, got ${what}`,
    });
  });

  it('reports a record without features, with its id', () => {
    expect(parseJsonlRow('{"id":"x"}', 4, FEATURES)).toEqual({
      line: 4,
      id: 'x',
      reason: 'missing "features"',
    });
  });

  it('reports an array of the wrong length', () => {
    expect(parseJsonlRow('{"id":"x","features":[1,2]}', 4, FEATURES)).toEqual({
      line: 4,
      id: 'x',
      reason: 'expected 3 values in feature order, got 2',
    });
  });

  it('names a missing feature of an object', () => {
    expect(parseJsonlRow('{"id":"x","features":{"a":1,"c":3}}', 4, FEATURES)).toEqual({
      line: 4,
      id: 'x',
      reason: 'feature "b": missing feature',
    });
  });

  it('names an unknown feature of an object, and counts the other problems', () => {
    expect(parseJsonlRow('{"id":"x","features":{"a":1,"b":2,"c":3,"z":4}}', 4, FEATURES)).toEqual({
      line: 4,
      id: 'x',
      reason: 'feature "z": unknown feature',
    });
    expect(parseJsonlRow('{"id":"x","features":{"a":1,"z":4}}', 4, FEATURES)).toMatchObject({
      reason: 'feature "z": unknown feature (and 2 more)',
    });
  });

  it('reports a value that is not a number, naming the feature', () => {
    expect(parseJsonlRow('{"id":"x","features":[1,"2",3]}', 4, FEATURES)).toEqual({
      line: 4,
      id: 'x',
      reason: 'feature "b": expected a number, got the string "2"',
    });
    expect(parseJsonlRow('{"id":"x","features":{"a":1,"b":null,"c":3}}', 4, FEATURES)).toMatchObject({
      reason: 'feature "b": expected a number, got null',
    });
  });

  it('reports features that are neither an array nor an object', () => {
    expect(parseJsonlRow('{"id":"x","features":"1,2,3"}', 4, FEATURES)).toMatchObject({
      reason: expect.stringContaining('expected an array of 3 numbers or an object keyed by feature name'),
    });
  });
});

describe('looksBinary', () => {
  const bytes = (...b: number[]) => Uint8Array.from(b);

  it('says plain ASCII is text', () => {
    expect(looksBinary(new TextEncoder().encode('a,b\n1,2\n'))).toBe(false);
    expect(looksBinary(new Uint8Array(0))).toBe(false);
  });

  it('says valid UTF-8 is text wherever its multi-byte characters fall', () => {
    expect(looksBinary(new TextEncoder().encode('é,€,😀,x,y,z\n'))).toBe(false);
    // A complete multi-byte character among the last three bytes of the chunk.
    expect(looksBinary(new TextEncoder().encode('id\né1\n'))).toBe(false);
    expect(looksBinary(new TextEncoder().encode('id\n😀\n'))).toBe(false);
  });

  it('says a chunk ending in the middle of a multi-byte character is text', () => {
    const euro = new TextEncoder().encode('abc€'); // € is 3 bytes
    expect(looksBinary(euro.subarray(0, euro.length - 1))).toBe(false);
    const emoji = new TextEncoder().encode('abc😀'); // 4 bytes
    expect(looksBinary(emoji.subarray(0, emoji.length - 1))).toBe(false);
  });

  it('says a NUL byte anywhere is binary', () => {
    expect(looksBinary(bytes(0x61, 0x62, 0x00, 0x63))).toBe(true);
    expect(looksBinary(bytes(0x00))).toBe(true);
  });

  it('says bytes that are not UTF-8 are binary', () => {
    // A PNG signature and a Latin-1 "é" followed by ASCII.
    expect(looksBinary(bytes(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x41, 0x41, 0x41, 0x41))).toBe(
      true,
    );
    expect(looksBinary(bytes(0x63, 0x61, 0x66, 0xe9, 0x2c, 0x31, 0x2c, 0x32, 0x2c, 0x33))).toBe(true);
  });
});

describe('csvField', () => {
  it('quotes only fields that need it, doubling quotes', () => {
    expect(csvField('plain text')).toBe('plain text');
    expect(csvField('a,b')).toBe('"a,b"');
    expect(csvField('say "hi"')).toBe('"say ""hi"""');
    expect(csvField('two\nlines')).toBe('"two\nlines"');
    expect(splitCsvLine(`${csvField('a,"b"')},${csvField('c')}`)).toEqual(['a,"b"', 'c']);
  });
});

describe('readLines', () => {
  it('joins lines split across chunks and numbers them from 1', async () => {
    expect(await collect(chunks('ab', 'c\nde', 'f\n', 'g\nh'))).toEqual([
      { line: 1, text: 'abc' },
      { line: 2, text: 'def' },
      { line: 3, text: 'g' },
      { line: 4, text: 'h' },
    ]);
  });

  it('yields several lines from one chunk', async () => {
    expect((await collect(chunks('a\nb\nc\n'))).map((l) => l.text)).toEqual(['a', 'b', 'c']);
  });

  it('strips CR of CRLF line ends, even when CR and LF are in different chunks', async () => {
    expect(await collect(chunks('a,b\r', '\n1,2\r\n', '3,4\r'))).toEqual([
      { line: 1, text: 'a,b' },
      { line: 2, text: '1,2' },
      { line: 3, text: '3,4' },
    ]);
  });

  it('yields a last line without a newline, and nothing extra after a final newline', async () => {
    expect((await collect(chunks('a\nb'))).map((l) => l.text)).toEqual(['a', 'b']);
    expect((await collect(chunks('a\nb\n'))).map((l) => l.text)).toEqual(['a', 'b']);
  });

  it('counts empty lines so later line numbers match the file', async () => {
    expect(await collect(chunks('a\n\n\r\nb\n'))).toEqual([
      { line: 1, text: 'a' },
      { line: 2, text: '' },
      { line: 3, text: '' },
      { line: 4, text: 'b' },
    ]);
  });

  it('decodes multi-byte characters split across chunks', async () => {
    const text = 'id,naïve\n€5,😀\nµ,ß';
    const encoded = new TextEncoder().encode(text);
    const oneByteChunks = Array.from(encoded, (b) => Uint8Array.of(b));
    expect((await collect(chunks(...oneByteChunks))).map((l) => l.text)).toEqual([
      'id,naïve',
      '€5,😀',
      'µ,ß',
    ]);
  });

  it('strips a byte order mark from the first line only, even when split across chunks', async () => {
    const bom = Uint8Array.of(0xef, 0xbb, 0xbf);
    const lines = await collect(chunks(bom.subarray(0, 2), Uint8Array.of(0xbf, 0x61, 0x0a), '\uFEFFb\n'));
    expect(lines).toEqual([
      { line: 1, text: 'a' },
      { line: 2, text: '\uFEFFb' },
    ]);
  });

  it('yields nothing for an empty source', async () => {
    expect(await collect(chunks())).toEqual([]);
    expect(await collect(chunks(new Uint8Array(0)))).toEqual([]);
  });

  it('hands each raw chunk and its byte offset to onChunk before its lines', async () => {
    const seen: [string, number][] = [];
    const order: string[] = [];
    for await (const { text } of readLines(chunks('ab\n', 'é\n', 'c'), (chunk, offset) => {
      seen.push([Buffer.from(chunk).toString('utf8'), offset]);
      order.push(`chunk@${offset}`);
    })) {
      order.push(text);
    }
    expect(seen).toEqual([
      ['ab\n', 0],
      ['é\n', 3],
      ['c', 6],
    ]);
    expect(order).toEqual(['chunk@0', 'ab', 'chunk@3', 'é', 'chunk@6', 'c']);
  });

  it('stops with the error onChunk throws', async () => {
    const seen: string[] = [];
    const read = (async () => {
      for await (const { text } of readLines(chunks('a\n', 'STOP', 'b\n'), (chunk) => {
        if (Buffer.from(chunk).toString() === 'STOP') throw new Error('binary');
      }))
        seen.push(text);
    })();
    await expect(read).rejects.toThrow('binary');
    expect(seen).toEqual(['a']);
  });
});
