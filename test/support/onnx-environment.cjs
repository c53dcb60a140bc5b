/**
 * Jest environment for tests that run onnxruntime-node. Its native binding creates output tensors'
 * typed arrays in Node's main realm, while jest runs each test file in a separate vm context whose
 * Float32Array is a different constructor; onnxruntime-common's Tensor then rejects the output with
 * "A float32 tensor's data must be type of function Float32Array()". Sharing the main realm's
 * typed-array constructors with the test context makes the `instanceof` checks agree.
 * jest.config.js makes it the default, so every test file (unit, e2e) can run models.
 */
const { TestEnvironment } = require('jest-environment-node');

const TYPED_ARRAYS = [
  'Int8Array',
  'Uint8Array',
  'Uint8ClampedArray',
  'Int16Array',
  'Uint16Array',
  'Int32Array',
  'Uint32Array',
  'Float32Array',
  'Float64Array',
  'BigInt64Array',
  'BigUint64Array',
];

class OnnxEnvironment extends TestEnvironment {
  constructor(config, context) {
    super(config, context);
    for (const name of TYPED_ARRAYS) this.global[name] = globalThis[name];
  }
}

module.exports = OnnxEnvironment;
