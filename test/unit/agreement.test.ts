import { addAgreement } from '../../functions/adapters/agreement-metrics.js';
import { METRICS, MetricsRecorder } from '../../functions/adapters/metrics.js';
import { type AgreementReport, agreementReport } from '../../functions/core/agreement.js';
import { combine, memberInfoFrom, type PredictionRecord } from '../../functions/core/combine.js';
import { type EnsembleSpec, type Manifest, parseManifest } from '../../functions/core/manifest.js';
import type { PredictionStore, PutResult } from '../../functions/core/ports.js';
import { storeResult } from '../../functions/ensemble/store-result.js';

/**
 * A manifest made here: ensemble `live` (a, b, c; soft vote) runs `d` as a shadow and sends a
 * share to `next` (a, b, c, d); `other` (a, b, e) is a canary of `side`, whose fan-out never runs e.
 */
const manifest: Manifest = parseManifest(
  {
    featureSets: { xy: ['x', 'y'] },
    labelSets: { yesno: ['no', 'yes'] },
    models: ['a', 'b', 'c', 'd', 'e'].map((id) => ({
      id,
      kind: 'onnx',
      file: `${id}.onnx`,
      version: '1',
      features: 'xy',
      labels: 'yesno',
    })),
    ensembles: [
      {
        name: 'live',
        members: ['a', 'b', 'c'],
        strategy: 'soft-vote',
        shadow: ['d'],
        canary: { ensemble: 'next', percent: 10 },
      },
      { name: 'next', members: ['a', 'b', 'c', 'd'], strategy: 'soft-vote', quorum: 3 },
      {
        name: 'side',
        members: ['a', 'b'],
        strategy: 'soft-vote',
        canary: { ensemble: 'other', percent: 50 },
      },
      { name: 'other', members: ['a', 'b', 'e'], strategy: 'soft-vote' },
    ],
  },
  '/tmp/agreement-manifest.json',
);
const ensemble = (name: string) => manifest.ensembles.get(name) as EnsembleSpec;
const ok = (model: string, probabilities: number[][]) => ({ model, status: 'ok', probabilities });
const meta = { id: 'agree-1', createdAt: '2026-11-28T00:00:00.000Z' };

// Two rows. Row 0: a, b, c say (0.2, 0.8), d says (0.9, 0.1). Row 1: everyone says (0.6, 0.4).
const outcomes = [
  ok('a', [
    [0.2, 0.8],
    [0.6, 0.4],
  ]),
  ok('b', [
    [0.2, 0.8],
    [0.6, 0.4],
  ]),
  ok('c', [
    [0.2, 0.8],
    [0.6, 0.4],
  ]),
  ok('d', [
    [0.9, 0.1],
    [0.6, 0.4],
  ]),
];

function report(served: string, raw: unknown[] = outcomes, routedFrom?: string): AgreementReport {
  const spec = ensemble(served);
  const record = combine(spec, raw, 2, memberInfoFrom(manifest), { ...meta, routedFrom });
  return agreementReport(manifest, spec, record, raw);
}

describe('agreement of each member with the answer', () => {
  it('counts rows whose top label agrees and sums the mean absolute difference, shadows included', () => {
    // live = mean(a, b, c) = (0.2, 0.8) then (0.6, 0.4). a, b, c agree on both rows, difference 0.
    // d: row 0 says "no" against "yes" (not agreed), |0.9 - 0.2| = |0.1 - 0.8| = 0.7, mean 0.7;
    //    row 1 agrees, difference 0. So d: 1 of 2 rows agreed, absDiffSum 0.7.
    const r = report('live');
    expect(r.members.map((m) => [m.model, m.shadow, m.rows, m.agreed])).toEqual([
      ['a', false, 2, 2],
      ['b', false, 2, 2],
      ['c', false, 2, 2],
      ['d', true, 2, 1],
    ]);
    expect(r.members[0]?.absDiffSum).toBeCloseTo(0, 12);
    expect(r.members[3]?.absDiffSum).toBeCloseTo(0.7, 12);
  });

  it('leaves out members that did not answer', () => {
    const r = report('live', [...outcomes.slice(0, 3), { model: 'd', status: 'failed' }]);
    expect(r.members.map((m) => m.model)).toEqual(['a', 'b', 'c']);
  });
});

describe('agreement between an ensemble and its canary, from the same member results', () => {
  it('compares the primary with its canary computed from the shadow’s results, when the primary serves', () => {
    // next = mean(a, b, c, d): row 0 no = (3 * 0.2 + 0.9) / 4 = 0.375, yes 0.625 -> "yes" like live;
    //   |0.2 - 0.375| = |0.8 - 0.625| = 0.175. Row 1: all (0.6, 0.4) -> agreed, 0.
    const r = report('live');
    expect(r.canary).toEqual({
      primary: 'live',
      canary: 'next',
      served: 'live',
      rows: 2,
      agreed: 2,
      absDiffSum: expect.closeTo(0.175, 12),
    });
  });

  it('compares the canary with the primary it was routed from, when the canary serves', () => {
    const r = report('next', outcomes, 'live');
    expect(r.canary).toEqual({
      primary: 'live',
      canary: 'next',
      served: 'next',
      rows: 2,
      agreed: 2,
      absDiffSum: expect.closeTo(0.175, 12),
    });
    // The canary's own members are all counted there.
    expect(r.members.every((m) => !m.shadow)).toBe(true);
  });

  it('counts a label the two sides disagree on', () => {
    // a, b (0.2, 0.8), c (0.9, 0.1), d (1, 0):
    // live = no (0.2 + 0.2 + 0.9) / 3 = 0.433333, yes 0.566667 -> "yes";
    // next = no (0.2 + 0.2 + 0.9 + 1) / 4 = 0.575, yes 0.425 -> "no".
    const raw = [ok('a', [[0.2, 0.8]]), ok('b', [[0.2, 0.8]]), ok('c', [[0.9, 0.1]]), ok('d', [[1, 0]])];
    const spec = ensemble('live');
    const record = combine(spec, raw, 1, memberInfoFrom(manifest), meta);
    const r = agreementReport(manifest, spec, record, raw);
    // |0.433333 - 0.575| = 0.141667 for both labels.
    expect(r.canary).toMatchObject({ rows: 1, agreed: 0, absDiffSum: expect.closeTo(0.141667, 6) });
  });

  it('computes the canary degraded when the shadow failed but its quorum still holds', () => {
    const r = report('live', [...outcomes.slice(0, 3), { model: 'd', status: 'failed' }]);
    // next answers from a, b, c (3 of 4, its quorum): the same as live.
    expect(r.canary).toMatchObject({ rows: 2, agreed: 2, absDiffSum: expect.closeTo(0, 12) });
  });

  it('has no comparison when the other side would have missed its quorum', () => {
    const raw = [
      outcomes[0],
      outcomes[1],
      { model: 'c', status: 'failed' },
      { model: 'd', status: 'failed' },
    ];
    // live answers with a, b (quorum 2 of 3); next would need 3 of 4.
    expect(report('live', raw).canary).toBeUndefined();
  });

  it('has no comparison when the other side has a member this fan-out never ran', () => {
    const raw = outcomes.slice(0, 2);
    expect(report('side', raw).canary).toBeUndefined();
  });

  it('has no comparison for an ensemble without a canary that was not routed', () => {
    expect(report('next').canary).toBeUndefined();
  });
});

describe('agreement as metrics (functions/adapters/agreement-metrics.ts)', () => {
  it('records counts per member, shadows marked by role, and per canary comparison', () => {
    const metrics = new MetricsRecorder();
    addAgreement(metrics, report('live'));
    const lines = metrics.lines().map((l) => ({
      dimensions: l.group.dimensions,
      metrics: Object.fromEntries(l.group.metrics),
    }));
    expect(lines.find((l) => l.dimensions.model === 'd')).toEqual({
      dimensions: { ensemble: 'live', model: 'd', role: 'shadow' },
      metrics: {
        MemberRowsCompared: [2],
        MemberRowsAgreed: [1],
        MemberAbsDiffSum: [expect.closeTo(0.7, 12)],
      },
    });
    expect(lines.find((l) => l.dimensions.model === 'a')?.dimensions.role).toBe('counted');
    expect(lines.find((l) => l.dimensions.canary === 'next')).toEqual({
      dimensions: { ensemble: 'live', canary: 'next' },
      metrics: {
        CanaryRowsCompared: [2],
        CanaryRowsAgreed: [2],
        CanaryAbsDiffSum: [expect.closeTo(0.175, 12)],
      },
    });
    // Every one of them is a count (a counter in Prometheus): sums that add up over requests.
    for (const name of [
      'MemberRowsCompared',
      'MemberRowsAgreed',
      'MemberAbsDiffSum',
      'CanaryAbsDiffSum',
    ] as const) {
      expect(METRICS[name].unit).toBe('Count');
    }
  });
});

describe('the ensemble step reports agreement once per stored prediction', () => {
  class Store implements PredictionStore {
    readonly records = new Map<string, PredictionRecord>();
    async putPrediction(record: PredictionRecord): Promise<PutResult> {
      const existing = this.records.get(record.id);
      if (existing) return { record: existing, created: false };
      this.records.set(record.id, record);
      return { record, created: true };
    }
    async getPrediction(id: string) {
      return this.records.get(id);
    }
  }

  it('reports a new record, records who served and for whom, and stays quiet for a repeated id', async () => {
    const store = new Store();
    const reports: AgreementReport[] = [];
    const event = { ...meta, ensemble: 'next', requested: 'live', rows: 2, members: outcomes };
    const first = await storeResult(event, manifest, store, undefined, {
      onAgreement: (r) => reports.push(r),
    });
    expect(first).toMatchObject({
      outcome: 'ok',
      created: true,
      record: { ensemble: 'next', routedFrom: 'live' },
    });
    expect(reports).toHaveLength(1);
    expect(reports[0]?.canary?.served).toBe('next');
    await storeResult(event, manifest, store, undefined, { onAgreement: (r) => reports.push(r) });
    expect(reports).toHaveLength(1);
  });

  it('does not record routedFrom when the ensemble asked for served', async () => {
    const result = await storeResult(
      { ...meta, ensemble: 'live', requested: 'live', rows: 2, members: outcomes },
      manifest,
      new Store(),
    );
    expect(result.outcome === 'ok' && 'routedFrom' in result.record).toBe(false);
  });
});
