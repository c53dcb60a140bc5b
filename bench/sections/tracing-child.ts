// One process of the tracing comparison (bench/sections/observability.ts): with Lambda's
// environment (tracing on, sampled or not) or without it (tracing off, the tracer never loaded).
// Times two handlers the way Lambda calls them: the real runner (an ONNX member, one row) and a
// handler that makes one DynamoDB call through the captured SDK client. Prints one
// `BENCH_RESULT <json>` line.
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { dynamoDocClient } from '../../functions/adapters/clients.js';
import { logger } from '../../functions/adapters/logger.js';
import { MetricsRecorder, metricsOf, publish } from '../../functions/adapters/metrics.js';
import { observability } from '../../functions/adapters/observability.js';
import { annotate, tracer } from '../../functions/adapters/tracing.js';
import { loadConfig } from '../../functions/core/config.js';
import { handler as runner } from '../../functions/runner/handler.js';
import { MetricsCollector } from '../../local/observability/collector.js';
import { median, round } from '../lib/stats.js';

interface Options {
  row: number[];
  model: string;
  warmup: number;
  count: number;
}

const options = JSON.parse(process.env.BENCH_OPTIONS ?? '{}') as Options;
const context = (id: number) =>
  ({ functionName: 'bench', awsRequestId: `r${id}`, getRemainingTimeInMillis: () => 30_000 }) as Context;

const reader = middy(async (_event: unknown, ctx: Context) => {
  annotate({ ensemble: 'breast-cancer', predictionId: ctx.awsRequestId, correlationId: ctx.awsRequestId });
  await dynamoDocClient(loadConfig()).send(
    new GetCommand({
      TableName: process.env.FANOUT_TABLE,
      Key: { pk: `PRED#${ctx.awsRequestId}`, sk: 'PRED' },
    }),
  );
  metricsOf(ctx).add('Requests', 1, { ensemble: 'breast-cancer' });
}).use(observability('ensemble', logger.createChild()));

const runnerUs: number[] = [];
const readerUs: number[] = [];
for (let i = 0; i < options.warmup + options.count; i++) {
  const t0 = performance.now();
  await runner({ model: options.model, instances: [options.row], correlationId: `p${i}` }, context(i));
  const t1 = performance.now();
  await reader({}, context(i));
  const t2 = performance.now();
  if (i >= options.warmup) {
    runnerUs.push((t1 - t0) * 1000);
    readerUs.push((t2 - t1) * 1000);
  }
}

// What publishing costs on its own: the ensemble step's lines for a five-member prediction.
const members = ['bc-logreg', 'bc-random-forest', 'bc-gradient-boosting', 'bc-mlp', 'bc-torch-mlp'];
const recorder = () => {
  const m = new MetricsRecorder({ predictionId: 'f4d7c0a2-1b5e-4f57-9a51-6c1e8d2b3a40' });
  for (const model of members) {
    const dims = { ensemble: 'breast-cancer', model };
    m.add('MemberLatency', 2.5, dims).add('MemberOk', 1, dims).add('MemberFailed', 0, dims);
    m.add('MemberTimedOut', 0, dims).add('MemberRows', 1, dims);
  }
  return m;
};
let bytes = 0;
const lines: string[] = [];
const write = process.stdout.write.bind(process.stdout);
process.stdout.write = ((chunk: string) => {
  bytes += Buffer.byteLength(chunk);
  if (lines.length < 5000) lines.push(...chunk.split('\n').filter(Boolean));
  return true;
}) as typeof process.stdout.write;
const publishUs: number[] = [];
for (let i = 0; i < 2000; i++) {
  const m = recorder();
  const t = performance.now();
  publish(m, 'bench');
  publishUs.push((performance.now() - t) * 1000);
}
process.stdout.write = write;

// What the local stack does with each line: parse it, update the Prometheus families and the dashboard.
const collector = new MetricsCollector();
const t = performance.now();
for (const line of lines) collector.ingest(line);
const ingestUsPerLine = ((performance.now() - t) * 1000) / lines.length;

write(
  `BENCH_RESULT ${JSON.stringify({
    tracing: tracer?.isTracingEnabled() ?? false,
    runnerUs: round(median(runnerUs), 1),
    readerUs: round(median(readerUs), 1),
    publishUs: round(median(publishUs), 1),
    emfBytesPerEnsembleStep: Math.round(bytes / 2000),
    ingestUsPerLine: round(ingestUsPerLine, 1),
  })}\n`,
);
process.exit(0);
