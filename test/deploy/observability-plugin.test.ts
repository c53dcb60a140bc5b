import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { DEFAULT_DRIFT_RULE } from '../../local/observability/dashboard-model.js';
import { ROOT } from './package-run.js';

// The dashboard and alarms follow the manifest: these tests bring their own manifest entries.
const require = createRequire(import.meta.url);
const { observabilityResources, servedEnsembles } = require('../../scripts/serverless-observability.cjs') as {
  observabilityResources: (o: object) => Record<string, { Type: string; Properties: Record<string, any> }>;
  servedEnsembles: (m: object, members?: string) => { name: string; members: string[] }[];
};

const ALARMS = { periodSeconds: 300, memberFailureRate: 0.05, memberMinCalls: 10, p99LatencyMs: 3000 };
const bundled = () => JSON.parse(readFileSync(join(ROOT, 'models/manifest.json'), 'utf8'));

function build(manifest: object, sagemakerMembers = '', templateAlarms?: string[]) {
  return observabilityResources({
    manifest,
    service: 'fanout',
    stage: 'test',
    sagemakerMembers,
    alarms: ALARMS,
    templateAlarms,
  });
}

/** The ARNs the dashboard's alarm widget shows, as `${Id.Arn}` placeholders. */
function dashboardAlarms(resources: ReturnType<typeof build>): string[] {
  const body = JSON.parse(resources.FanoutDashboard?.Properties.DashboardBody['Fn::Sub']);
  return body.widgets.find((w: any) => w.type === 'alarm').properties.alarms;
}

/** The per-member alarms, as `ensemble/model: failure-rate` or `ensemble/model: agreement`. */
function memberAlarms(resources: ReturnType<typeof build>): string[] {
  return Object.values(resources)
    .filter((r) => r.Type === 'AWS::CloudWatch::Alarm' && r.Properties.Metrics)
    .flatMap((r) => {
      const dims = r.Properties.Metrics[0].MetricStat.Metric.Dimensions as { Name: string; Value: string }[];
      const v = (n: string) => dims.find((d) => d.Name === n)?.Value;
      const kind = /-(failure-rate|agreement)$/.exec(r.Properties.AlarmName)?.[1];
      return kind ? [`${v('ensemble')}/${v('model')}: ${kind}`] : [];
    })
    .sort();
}

/** The dashboard's member widgets by title, with the labels of their lines. */
function memberWidgets(resources: ReturnType<typeof build>): Record<string, string[]> {
  const body = JSON.parse(resources.FanoutDashboard?.Properties.DashboardBody['Fn::Sub']);
  return Object.fromEntries(
    body.widgets
      .filter((w: any) => w.type === 'metric' && /: member latency p99/.test(w.properties.title))
      .map((w: any) => [w.properties.title, w.properties.metrics.map((m: any[]) => m[m.length - 1].label)]),
  );
}

describe('alarms and dashboard from the manifest', () => {
  it('give a model added to the manifest its own alarm and its line on the dashboard, with no serverless.yml edit', () => {
    const manifest = bundled();
    const before = build(manifest);
    const template = manifest.models.find((m: { id: string }) => m.id === 'bc-logreg');
    manifest.models.push({ ...template, id: 'bc-new-member', file: 'breast-cancer/new.onnx' });
    manifest.ensembles
      .find((e: { name: string }) => e.name === 'breast-cancer')
      .members.push('bc-new-member');
    const after = build(manifest);
    expect(memberAlarms(after)).toEqual(
      [
        ...memberAlarms(before),
        'breast-cancer/bc-new-member: agreement',
        'breast-cancer/bc-new-member: failure-rate',
      ].sort(),
    );
    expect(memberWidgets(after)['breast-cancer: member latency p99 (ms)']).toContain('bc-new-member');
  });

  it("show every alarm on the dashboard: the manifest's and those serverless.yml declares, whatever their names", () => {
    const resources = build(bundled(), '', ['BatchTriggerErrorsAlarm', 'QueueBacklogWatch']);
    const generated = Object.keys(resources).filter((id) => resources[id]?.Type === 'AWS::CloudWatch::Alarm');
    expect(generated.length).toBeGreaterThan(5);
    expect(dashboardAlarms(resources).sort()).toEqual(
      ['BatchTriggerErrorsAlarm', 'QueueBacklogWatch', ...generated].map((id) => `\${${id}.Arn}`).sort(),
    );
  });

  it('give a new ensemble its quorum, latency and failed-job alarms', () => {
    const manifest = bundled();
    manifest.ensembles.push({
      name: 'wine-trial',
      members: ['wine-logreg', 'wine-mlp'],
      strategy: 'max',
      quorum: 1,
    });
    const names = Object.values(build(manifest))
      .filter((r) => r.Type === 'AWS::CloudWatch::Alarm')
      .map((r) => r.Properties.AlarmName as string)
      .filter((n) => n.startsWith('fanout-test-wine-trial-'))
      .sort();
    expect(names).toEqual([
      'fanout-test-wine-trial-batch-jobs-failed',
      'fanout-test-wine-trial-latency-p99',
      'fanout-test-wine-trial-quorum-misses',
      'fanout-test-wine-trial-wine-logreg-agreement',
      'fanout-test-wine-trial-wine-logreg-failure-rate',
      'fanout-test-wine-trial-wine-mlp-agreement',
      'fanout-test-wine-trial-wine-mlp-failure-rate',
    ]);
  });

  it("watch each counted member's agreement with the answer for drift, over hours, shadows left to the dashboard", () => {
    const manifest = bundled();
    const withShadow = manifest.ensembles.find((e: { shadow?: string[] }) => e.shadow?.length);
    expect(withShadow).toBeDefined();
    const resources = observabilityResources({
      manifest,
      service: 'fanout',
      stage: 'test',
      sagemakerMembers: '',
      alarms: {
        ...ALARMS,
        memberAgreementMin: 0.85,
        memberAgreementMinRows: 200,
        agreementPeriodSeconds: 7200,
      },
    });
    const agreement = memberAlarms(resources).filter((a) => a.endsWith(': agreement'));
    expect(agreement).toEqual(
      memberAlarms(resources)
        .filter((a) => a.endsWith(': failure-rate'))
        .map((a) => a.replace('failure-rate', 'agreement')),
    );
    for (const shadow of withShadow.shadow) {
      expect(agreement).not.toContain(`${withShadow.name}/${shadow}: agreement`);
    }
    const [member] = withShadow.members as string[];
    const alarm = Object.values(resources).find(
      (r) => r.Properties.AlarmName === `fanout-test-${withShadow.name}-${member}-agreement`,
    );
    expect(alarm?.Properties).toMatchObject({
      Threshold: 0.85,
      ComparisonOperator: 'LessThanThreshold',
      EvaluationPeriods: 3,
      DatapointsToAlarm: 3,
      TreatMissingData: 'notBreaching',
    });
    const queries = alarm?.Properties.Metrics as any[];
    expect(
      queries
        .filter((q) => q.MetricStat)
        .map((q) => [
          q.MetricStat.Metric.MetricName,
          q.MetricStat.Period,
          q.MetricStat.Stat,
          Object.fromEntries(q.MetricStat.Metric.Dimensions.map((d: any) => [d.Name, d.Value])),
        ]),
    ).toEqual(
      ['MemberRowsAgreed', 'MemberRowsCompared'].map((name) => [
        name,
        7200,
        'Sum',
        { stage: 'test', ensemble: withShadow.name, model: member, role: 'counted' },
      ]),
    );
    expect(queries.find((q) => q.ReturnData)?.Expression).toBe('IF(compared >= 200, agreed / compared, 1)');
    expect(alarm?.Properties.AlarmDescription).toMatch(
      /fewer than 85% of the rows .* \(6 h\): it is drifting/,
    );
    // Whoever is paged opens the dashboard: each agreement graph carries the same threshold.
    const body = JSON.parse(resources.FanoutDashboard?.Properties.DashboardBody['Fn::Sub']);
    const graphs = body.widgets.filter((w: any) =>
      /: agreement with the answer \(share of rows\)$/.test(w.properties.title ?? ''),
    );
    expect(graphs).toHaveLength(manifest.ensembles.length);
    for (const g of graphs) {
      expect(g.properties.annotations.horizontal).toEqual([
        {
          label: 'drift alarm: under 85% for 3 periods of 120 min (counted members)',
          value: 0.85,
          color: '#d62728',
        },
      ]);
    }
  });

  it('give an ensemble that turns its result cache on a cache-errors alarm and a line on the cache row', () => {
    const manifest = bundled();
    for (const e of manifest.ensembles) delete e.cache;
    const none = build(manifest);
    const body = (r: ReturnType<typeof build>) =>
      JSON.parse(r.FanoutDashboard?.Properties.DashboardBody['Fn::Sub']);
    const headings = (r: ReturnType<typeof build>) =>
      body(r)
        .widgets.filter((w: any) => w.type === 'text')
        .map((w: any) => w.properties.markdown.replace(/ ·.*/, ''));
    // No cache anywhere: no cache row, no cache alarm.
    expect(headings(none)).not.toContain('## Result cache');
    expect(Object.keys(none).filter((id) => id.startsWith('CacheErrorsAlarm'))).toEqual([]);
    const chosen = manifest.ensembles[1];
    chosen.cache = { ttlSeconds: 600 };
    const one = build(manifest);
    expect(headings(one)).toContain('## Result cache');
    const alarm = Object.values(one).find(
      (r) => r.Properties.AlarmName === `fanout-test-${chosen.name}-cache-errors`,
    );
    expect(
      alarm?.Properties.Metrics.filter((q: any) => q.MetricStat).map((q: any) =>
        Object.fromEntries(q.MetricStat.Metric.Dimensions.map((d: any) => [d.Name, d.Value])),
      ),
    ).toEqual([
      { stage: 'test', ensemble: chosen.name, path: 'sync' },
      { stage: 'test', ensemble: chosen.name, path: 'batch' },
    ]);
    expect(alarm?.Properties).toMatchObject({ Threshold: 1, EvaluationPeriods: 3, DatapointsToAlarm: 2 });
    const rate = body(one).widgets.find(
      (w: any) => w.properties.title === 'Requests answered from the cache (share)',
    );
    expect(rate.properties.metrics.map((m: any[]) => m[m.length - 1].label)).toEqual([chosen.name]);
  });

  it('watch a SageMaker member only where the deployment serves it (FANOUT_SAGEMAKER_MEMBERS)', () => {
    const manifest = bundled();
    const sagemaker = manifest.models
      .filter((m: { kind: string }) => m.kind === 'sagemaker')
      .map((m: { id: string }) => m.id);
    expect(sagemaker.length).toBeGreaterThan(0);
    const without = servedEnsembles(manifest).flatMap((e) => e.members);
    const withThem = servedEnsembles(
      manifest,
      sagemaker.map((id: string) => `${id}=my-endpoint`).join(','),
    ).flatMap((e) => e.members);
    for (const id of sagemaker) {
      expect(without).not.toContain(id);
      expect(withThem).toContain(id);
    }
    expect(
      memberAlarms(build(manifest, sagemaker.join(','))).some((a) => a.includes(`/${sagemaker[0]}: `)),
    ).toBe(true);
  });

  it.each([
    [
      'memberAgreementMin',
      90,
      /custom\.alarms\.memberAgreementMin is 90: it must be a share of rows between 0 and 1/,
    ],
    ['memberAgreementMin', 'high', /custom\.alarms\.memberAgreementMin is "high": it must be a number/],
    [
      'memberAgreementMinRows',
      0.5,
      /custom\.alarms\.memberAgreementMinRows is 0\.5: it must be a whole number of rows/,
    ],
    [
      'agreementPeriodSeconds',
      90,
      /custom\.alarms\.agreementPeriodSeconds is 90: it must be a whole number of minutes/,
    ],
    ['agreementPeriodSeconds', 86_400, /custom\.alarms\.agreementPeriodSeconds is 86400: .* at most 28800/],
  ])('refuse custom.alarms.%s = %j, naming the setting and what it takes', (name, value, message) => {
    expect(() =>
      observabilityResources({
        manifest: bundled(),
        service: 'fanout',
        stage: 'test',
        sagemakerMembers: '',
        alarms: { ...ALARMS, [name]: value },
      }),
    ).toThrow(message);
  });

  it('take the drift rule the commands and the local dashboard assume when serverless.yml sets none', () => {
    const alarm = Object.values(build(bundled())).find((r) =>
      /-agreement$/.test(String(r.Properties.AlarmName)),
    );
    expect(alarm?.Properties.Threshold).toBe(DEFAULT_DRIFT_RULE.agreementMin);
    expect(JSON.stringify(alarm?.Properties.Metrics)).toContain(
      `IF(compared >= ${DEFAULT_DRIFT_RULE.minRows}, agreed / compared, 1)`,
    );
    const periods = (alarm?.Properties.Metrics as any[])
      .filter((q) => q.MetricStat)
      .map((q) => q.MetricStat.Period);
    expect(periods).toEqual([DEFAULT_DRIFT_RULE.periodSeconds, DEFAULT_DRIFT_RULE.periodSeconds]);
  });

  it('write shares in alarm descriptions as people write them (7%, not 7.000000000000001%)', () => {
    const resources = observabilityResources({
      manifest: bundled(),
      service: 'fanout',
      stage: 'test',
      sagemakerMembers: '',
      alarms: { ...ALARMS, memberFailureRate: 0.07, memberAgreementMin: 0.07 },
    });
    const descriptions = Object.values(resources).map((r) => String(r.Properties.AlarmDescription ?? ''));
    expect(descriptions.some((d) => d.includes('on more than 7% of its calls'))).toBe(true);
    expect(descriptions.some((d) => d.includes('on fewer than 7% of the rows'))).toBe(true);
    expect(descriptions.join(' ')).not.toMatch(/\d\.\d{6,}%/);
  });

  it('keep logical ids apart for names that differ only in punctuation', () => {
    const manifest = bundled();
    const first = manifest.ensembles[0];
    manifest.ensembles.push({ ...first, name: first.name.replace('-', '_') });
    const ids = Object.keys(build(manifest)).filter((id) => id.startsWith('QuorumMissesAlarm'));
    expect(new Set(ids).size).toBe(manifest.ensembles.length);
    for (const id of ids) expect(id).toMatch(/^[A-Za-z0-9]+$/);
  });
});
