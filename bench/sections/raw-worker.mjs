// One ensemble member in its own thread with its own onnxruntime session (intraOpNumThreads 1, as
// the OnnxScorer): what "members in parallel" can mean inside one process, since onnxruntime-node's
// session.run() computes on the calling (main) thread. Plain JS: workers do not inherit tsx.
import { parentPort, workerData } from 'node:worker_threads';
import { InferenceSession, Tensor } from 'onnxruntime-node';

const { file, input, output, width } = workerData;
const session = await InferenceSession.create(file, { intraOpNumThreads: 1 });
parentPort.on('message', async (msg) => {
  const started = performance.now();
  const rows = msg.data.length / width;
  const result = await session.run({ [input]: new Tensor('float32', msg.data, [rows, width]) }, [output]);
  parentPort.postMessage({ id: msg.id, ms: performance.now() - started, first: result[output].data[0] });
});
parentPort.postMessage({ ready: true });
