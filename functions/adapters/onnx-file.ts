import { readFileSync } from 'node:fs';
import type { Dim, ModelSignature, ValueInfo } from '../core/signature.js';

/** What the header of an ONNX file says, without loading it into a runtime. */
export interface OnnxFileInfo {
  signature: ModelSignature;
  /** Operator sets by domain (`ai.onnx` for the default one). */
  opsets: Record<string, number>;
  irVersion?: number;
  producer?: string;
}

/** A file that cannot be read as an ONNX model; the message says why, without the path. */
export class OnnxFileError extends Error {
  override name = 'OnnxFileError';
  constructor(
    message: string,
    readonly missing = false,
  ) {
    super(message);
  }
}

/**
 * Reads an ONNX file's inputs, outputs and opsets. Only the graph's declarations are decoded:
 * node bodies and initializer data are skipped, so a 100 KB tree ensemble reads in well under a
 * millisecond (a full protobuf decode takes 15-50 ms) and no runtime is loaded. This is what the
 * API function uses to answer readiness; it carries no onnxruntime.
 */
export function readOnnxFile(path: string): OnnxFileInfo {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new OnnxFileError('does not exist', true);
    throw new OnnxFileError(`cannot be read (${code ?? (err as Error).message})`);
  }
  return parseOnnx(bytes);
}

/** Parses the bytes of an ONNX ModelProto (see {@link readOnnxFile}). */
export function parseOnnx(bytes: Uint8Array): OnnxFileInfo {
  try {
    return parseModel(bytes);
  } catch (err) {
    throw new OnnxFileError(`is not an ONNX model (${(err as Error).message})`);
  }
}

// Protobuf wire format, just enough of it: https://protobuf.dev/programming-guides/encoding/
class Reader {
  pos = 0;
  constructor(
    private readonly buf: Uint8Array,
    private readonly end = buf.length,
  ) {}

  more(): boolean {
    return this.pos < this.end;
  }

  varint(): bigint {
    let result = 0n;
    let shift = 0n;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new Error('truncated varint');
      const byte = this.buf[this.pos++] as number;
      result |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) return result;
      shift += 7n;
    }
    throw new Error('varint longer than 10 bytes');
  }

  int(): number {
    return Number(BigInt.asIntN(64, this.varint()));
  }

  /** A length-delimited field's bytes, as a sub-reader. */
  sub(): Reader {
    const length = Number(this.varint());
    const start = this.pos;
    if (start + length > this.end) throw new Error('field runs past the end of its message');
    this.pos += length;
    const r = new Reader(this.buf, start + length);
    r.pos = start;
    return r;
  }

  string(): string {
    const r = this.sub();
    return new TextDecoder('utf-8', { fatal: true }).decode(this.buf.subarray(r.pos, r.end));
  }

  /** Iterates a message's fields: the callback reads the value, or the field is skipped. */
  fields(read: (field: number, wire: number) => boolean): void {
    while (this.more()) {
      const key = Number(this.varint());
      const field = key >>> 3;
      const wire = key & 7;
      if (field === 0) throw new Error('field number 0');
      if (!read(field, wire)) this.skip(wire);
    }
  }

  private skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 1) this.pos += 8;
    else if (wire === 2) this.sub();
    else if (wire === 5) this.pos += 4;
    else throw new Error(`unsupported wire type ${wire}`);
    if (this.pos > this.end) throw new Error('field runs past the end of its message');
  }
}

const LEN = 2;
const VARINT = 0;

/** onnx.TensorProto.DataType, named as onnxruntime names tensor types. */
const ELEMENT_TYPES: Record<number, string> = {
  1: 'float32',
  2: 'uint8',
  3: 'int8',
  4: 'uint16',
  5: 'int16',
  6: 'int32',
  7: 'int64',
  8: 'string',
  9: 'bool',
  10: 'float16',
  11: 'float64',
  12: 'uint32',
  13: 'uint64',
  14: 'complex64',
  15: 'complex128',
  16: 'bfloat16',
};

function parseModel(bytes: Uint8Array): OnnxFileInfo {
  const r = new Reader(bytes);
  const opsets: Record<string, number> = {};
  let signature: ModelSignature | undefined;
  let irVersion: number | undefined;
  let producer: string | undefined;
  // ModelProto: 1 ir_version, 2 producer_name, 7 graph, 8 opset_import.
  r.fields((field, wire) => {
    if (field === 1 && wire === VARINT) irVersion = r.int();
    else if (field === 2 && wire === LEN) producer = r.string();
    else if (field === 7 && wire === LEN) signature = parseGraph(r.sub());
    else if (field === 8 && wire === LEN) {
      const { domain, version } = parseOpset(r.sub());
      opsets[domain || 'ai.onnx'] = version;
    } else return false;
    return true;
  });
  if (!signature) throw new Error('no graph');
  if (irVersion === undefined) throw new Error('no ir_version');
  return { signature, opsets, irVersion, producer };
}

function parseOpset(r: Reader): { domain: string; version: number } {
  let domain = '';
  let version = 0;
  r.fields((field, wire) => {
    if (field === 1 && wire === LEN) domain = r.string();
    else if (field === 2 && wire === VARINT) version = r.int();
    else return false;
    return true;
  });
  return { domain, version };
}

function parseGraph(r: Reader): ModelSignature {
  const inputs: ValueInfo[] = [];
  const outputs: ValueInfo[] = [];
  const initializers = new Set<string>();
  // GraphProto: 5 initializer, 11 input, 12 output, 15 sparse_initializer; nodes (1) are skipped.
  r.fields((field, wire) => {
    if (wire !== LEN) return false;
    if (field === 5) initializers.add(tensorName(r.sub()));
    else if (field === 15) initializers.add(sparseTensorName(r.sub()));
    else if (field === 11) inputs.push(parseValueInfo(r.sub()));
    else if (field === 12) outputs.push(parseValueInfo(r.sub()));
    else return false;
    return true;
  });
  // Older exporters list initializers (weights) among the inputs too: they are not fed.
  return { inputs: inputs.filter((v) => !initializers.has(v.name)), outputs };
}

function tensorName(r: Reader): string {
  let name = '';
  r.fields((field, wire) => {
    if (field === 8 && wire === LEN) name = r.string();
    else return false;
    return true;
  });
  return name;
}

function sparseTensorName(r: Reader): string {
  let name = '';
  r.fields((field, wire) => {
    if (field === 1 && wire === LEN) name = tensorName(r.sub());
    else return false;
    return true;
  });
  return name;
}

function parseValueInfo(r: Reader): ValueInfo {
  let name = '';
  let info: Omit<ValueInfo, 'name'> = { tensor: false };
  // ValueInfoProto: 1 name, 2 type.
  r.fields((field, wire) => {
    if (field === 1 && wire === LEN) name = r.string();
    else if (field === 2 && wire === LEN) info = parseType(r.sub());
    else return false;
    return true;
  });
  return { name, ...info };
}

function parseType(r: Reader): Omit<ValueInfo, 'name'> {
  let out: Omit<ValueInfo, 'name'> = { tensor: false };
  // TypeProto: 1 tensor_type; sequences (4), maps (5) and the rest are not tensors.
  r.fields((field, wire) => {
    if (field === 1 && wire === LEN) out = parseTensorType(r.sub());
    else return false;
    return true;
  });
  return out;
}

function parseTensorType(r: Reader): Omit<ValueInfo, 'name'> {
  let type: string | undefined;
  let dims: Dim[] | undefined;
  // TypeProto.Tensor: 1 elem_type, 2 shape (absent: rank unknown).
  r.fields((field, wire) => {
    if (field === 1 && wire === VARINT) {
      const code = r.int();
      type = ELEMENT_TYPES[code] ?? `type ${code}`;
    } else if (field === 2 && wire === LEN) dims = parseShape(r.sub());
    else return false;
    return true;
  });
  return { tensor: true, type, ...(dims ? { dims } : {}) };
}

function parseShape(r: Reader): Dim[] {
  const dims: Dim[] = [];
  // TensorShapeProto: 1 dim { 1 dim_value | 2 dim_param }.
  r.fields((field, wire) => {
    if (field !== 1 || wire !== LEN) return false;
    const d = r.sub();
    let dim: Dim = null;
    d.fields((f, w) => {
      if (f === 1 && w === VARINT) dim = d.int();
      else if (f === 2 && w === LEN) dim = d.string() || null;
      else return false;
      return true;
    });
    dims.push(dim);
    return true;
  });
  return dims;
}
