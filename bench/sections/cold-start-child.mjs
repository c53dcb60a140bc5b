// A fresh process's first predictions through the runner handler: `node [--import tsx]
// cold-start-child.mjs <handler module>`. It calls the handler once for every model of the
// manifest (FANOUT_MANIFEST), one after another as a Lambda sandbox takes one event at a time, and
// prints one JSON line: milliseconds since this process started (performance.timeOrigin). A line
// `first` goes out as soon as the first model has answered, so the parent can time a Lambda cold
// start (one invocation) from the outside.
// Plain JS so the packaged (bundled) runner can be run without tsx.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const entered = performance.now();
const { handler } = await import(pathToFileURL(resolve(process.argv[2])).href);
const imported = performance.now();
const manifest = JSON.parse(readFileSync(resolve(process.env.FANOUT_MANIFEST), 'utf8'));
const context = {
  functionName: 'runner',
  awsRequestId: 'cold-start',
  getRemainingTimeInMillis: () => 30_000,
};
const perModel = {};
let firstPredictionMs;
for (const model of manifest.models) {
  const features = typeof model.features === 'string' ? manifest.featureSets[model.features] : model.features;
  const started = performance.now();
  const out = await handler({ model: model.id, instances: [features.map(() => 0.5)] }, context);
  if (out?.status !== 'ok') throw new Error(`${model.id}: ${JSON.stringify(out)}`);
  perModel[model.id] = performance.now() - started;
  if (firstPredictionMs === undefined) {
    firstPredictionMs = performance.now();
    process.stdout.write('first\n');
  }
}
console.log(JSON.stringify({ entered, imported, firstPredictionMs, done: performance.now(), perModel }));
process.exit(0);
