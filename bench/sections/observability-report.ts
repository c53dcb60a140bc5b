import { f, signed, table } from '../lib/format.js';
import type { ObservabilityCost } from './observability.js';

/** The RESULTS.md section for `observability` in bench/results.json. */
export function renderObservability(o: ObservabilityCost): string[] {
  const m = o.metrics;
  const t = o.tracing;
  const us = (v: number) => `${f(v, 0)} µs`;
  const critical = (side: { runnerUs: number; sdkCallUs: number }) =>
    (side.runnerUs - t.off.runnerUs + 2 * (side.sdkCallUs - t.off.sdkCallUs)) / 1000;
  const apart = o.measuredAt
    ? [
        `Measured on its own on ${o.measuredAt.slice(0, 10)} (${o.measuredAt.slice(11, 16)} UTC), load average ` +
          `${(o.loadAverageAtStart ?? []).join(', ')} at the start and ${(o.loadAverageAtEnd ?? []).join(', ')} ` +
          'at the end (2 cores): under that load the c16 figures swing by half from one run to the next; the ' +
          "c1 rows alternate request by request and the CPU row counts the stack's own CPU time, so they hold.",
        '',
      ]
    : [];
  return [
    '## What metrics and tracing cost',
    '',
    ...apart,
    'Metrics: two `npm start` stacks side by side, one as shipped and one with ' +
      '`POWERTOOLS_METRICS_DISABLED=true`, requests alternating between them ' +
      '(`bench/sections/observability.ts`). With metrics on, each request writes 7 EMF lines (the API, ' +
      'one per member from the ensemble step, the runners none) that the stack collects for `/metrics` ' +
      'and `/dashboard`.',
    '',
    table(
      ['', 'metrics on', 'metrics off', 'on costs'],
      [
        ['c1 p50 ms', f(m.on.e2eP50Ms), f(m.off.e2eP50Ms), `**${signed(m.costP50Ms, 3)} ms**`],
        ['c1 p99 ms', f(m.on.e2eP99Ms), f(m.off.e2eP99Ms), ''],
        [
          'stack CPU per request, ms',
          f(m.on.cpuMsPerRequest),
          f(m.off.cpuMsPerRequest),
          `**${signed(m.costCpuMs, 3)} ms**`,
        ],
        [
          'c16 req/s (the change: median of back-to-back pairs)',
          f(m.on.c16Rps, 1),
          f(m.off.c16Rps, 1),
          `${signed(m.c16ChangePct, 0)}%`,
        ],
      ],
    ),
    '',
    `Publishing the ensemble step's lines for a five-member prediction takes ${us(m.publishUsPerEnsembleStep)} ` +
      `in-process and writes ${m.emfBytesPerEnsembleStep} bytes of EMF (CloudWatch Logs ingests them at its per-GB price); ` +
      `the local stack's collector takes ${us(m.ingestUsPerLine)} per line to parse it into \`/metrics\` and the dashboard.`,
    '',
    `Tracing is off outside Lambda (the tracer is not even loaded), so it is measured in processes given ` +
      `Lambda's environment: the X-Ray SDK in Lambda mode, segments sent over UDP to a local socket ` +
      `standing in for the daemon (${t.segmentsSent} segments received), against a process without it; ` +
      `${t.rounds} rounds, the three modes in turn. Per invocation, median:`,
    '',
    table(
      ['', 'tracing off', 'on, not sampled', 'on, sampled'],
      [
        [
          'runner (one ONNX member, one row)',
          us(t.off.runnerUs),
          us(t.unsampled.runnerUs),
          us(t.sampled.runnerUs),
        ],
        [
          'a handler with one DynamoDB call',
          us(t.off.sdkCallUs),
          us(t.unsampled.sdkCallUs),
          us(t.sampled.sdkCallUs),
        ],
      ],
    ),
    '',
    `For a synchronous prediction on Lambda (five runners, plus the API and the ensemble step with one SDK ` +
      `call each) that is **${signed(t.perRequestSampledMs, 3)} ms** of compute across its invocations when ` +
      `the request is sampled and ${signed(t.perRequestUnsampledMs, 3)} ms when it is not (X-Ray's default ` +
      'sampling in Lambda records the first request each second and 5% of the rest). The runners run in ' +
      'parallel, so the latency a client sees grows by the API, one runner and the ensemble step: about ' +
      `${signed(critical(t.sampled), 2)} ms sampled, ${signed(critical(t.unsampled), 2)} ms not.`,
    '',
  ];
}
