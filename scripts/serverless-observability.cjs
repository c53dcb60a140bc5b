'use strict';
// A local serverless plugin: the CloudWatch dashboard and the alarms that follow the manifest.
// Members and ensembles come from models/manifest.json (FANOUT_MANIFEST), so adding a model adds
// its alarm and its place on the dashboard at the next `sls package`/`sls deploy`, with no edit of
// serverless.yml. The metrics are the ones functions/adapters/metrics.ts writes (namespace fanout,
// a `stage` dimension on every one); test/deploy checks every name used here is in its catalog.
const { createHash } = require('node:crypto');
const { readFileSync } = require('node:fs');
const { resolve } = require('node:path');

const NAMESPACE = 'fanout';
// biome-ignore lint/suspicious/noTemplateCurlyInString: an Fn::Sub placeholder, not a JavaScript template.
const REGION = '${AWS::Region}';
const TOPIC = 'AlarmTopic';
const DEAD_LETTER_QUEUE = 'BatchTriggerDeadLetterQueue';
const TRIGGER_FUNCTION = 'BatchTriggerLambdaFunction';
const ALARM = 'AWS::CloudWatch::Alarm';

/**
 * The ensembles and members this deployment serves: a SageMaker member only when
 * FANOUT_SAGEMAKER_MEMBERS names it (functions/core/served.ts leaves the others out at run time).
 * `cache` is set for an ensemble with a result cache; `shadow` lists its shadow members (served
 * by the same rule) and `canary` names its canary ensemble when that one is served too.
 * @param {{ models?: { id: string, kind: string }[], ensembles?: { name: string, members: string[], shadow?: string[], canary?: { ensemble: string }, cache?: { ttlSeconds: number } }[] }} manifest
 * @param {string | undefined} sagemakerMembers
 * @returns {{ name: string, members: string[], shadow: string[], canary?: string, cache: boolean }[]}
 */
function servedEnsembles(manifest, sagemakerMembers) {
  const named = new Set(
    (sagemakerMembers ?? '')
      .split(',')
      .map((p) => p.split('=')[0].trim())
      .filter(Boolean),
  );
  const kinds = new Map((manifest.models ?? []).map((m) => [m.id, m.kind]));
  const served = (m) => kinds.get(m) !== 'sagemaker' || named.has(m);
  const ensembles = (manifest.ensembles ?? [])
    .map((e) => ({
      name: e.name,
      members: e.members.filter(served),
      shadow: (e.shadow ?? []).filter(served),
      canary: e.canary?.ensemble,
      cache: e.cache !== undefined && e.cache !== null,
    }))
    .filter((e) => e.members.length > 0);
  const names = new Set(ensembles.map((e) => e.name));
  return ensembles.map(({ canary, ...e }) => (canary && names.has(canary) ? { ...e, canary } : e));
}

/** A CloudFormation logical id for a name: its letters and digits, plus a hash that keeps `a-b` and `a_b` apart. */
function idPart(name) {
  const words = String(name)
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((w) => w.charAt(0).toUpperCase() + w.slice(1));
  return `${words.join('')}${createHash('sha256').update(String(name)).digest('hex').slice(0, 6)}`;
}

const dims = (values) => Object.entries(values).map(([Name, Value]) => ({ Name, Value }));

/**
 * The dashboard and alarm resources for a manifest.
 * @param {object} options
 * @param {object} options.manifest the parsed manifest
 * @param {string} options.service
 * @param {string} options.stage
 * @param {string | undefined} options.sagemakerMembers FANOUT_SAGEMAKER_MEMBERS
 * @param {{ periodSeconds: number, memberFailureRate: number, memberMinCalls: number, p99LatencyMs: number, cacheErrorsPerPeriod?: number, memberAgreementMin?: number, memberAgreementMinRows?: number, agreementPeriodSeconds?: number }} options.alarms
 * @param {string[]} [options.templateAlarms] logical ids of the alarms the template has already
 *   (serverless.yml's own), shown on the dashboard with these
 * @returns {Record<string, object>} resources by logical id
 */
function observabilityResources({ manifest, service, stage, sagemakerMembers, alarms, templateAlarms = [] }) {
  const period = Number(alarms.periodSeconds);
  const ensembles = servedEnsembles(manifest, sagemakerMembers);
  const prefix = `${service}-${stage}`;
  const actions = { AlarmActions: [{ Ref: TOPIC }], OKActions: [{ Ref: TOPIC }] };
  const resources = {};
  const alarm = (id, properties) => {
    resources[id] = {
      Type: 'AWS::CloudWatch::Alarm',
      Properties: { EvaluationPeriods: 1, TreatMissingData: 'notBreaching', ...properties, ...actions },
    };
  };
  const metric = (name, dimensions, stat, seconds = period) => ({
    Metric: { Namespace: NAMESPACE, MetricName: name, Dimensions: dims({ stage, ...dimensions }) },
    Period: seconds,
    Stat: stat,
  });
  // Drift shows over hours, not minutes: agreement is judged over longer periods than failures.
  const agreementPeriod = setting(alarms, 'agreementPeriodSeconds', 3600, (v) =>
    Number.isInteger(v) && v >= 60 && v % 60 === 0 && v * 3 <= 86_400
      ? undefined
      : 'a whole number of minutes in seconds, at most 28800 (CloudWatch looks back one day over 3 periods)',
  );
  const agreementMin = setting(alarms, 'memberAgreementMin', 0.9, (v) =>
    v > 0 && v <= 1 ? undefined : 'a share of rows between 0 and 1 (0.9 is 90%)',
  );
  const agreementRows = setting(alarms, 'memberAgreementMinRows', 50, (v) =>
    Number.isInteger(v) && v >= 1 ? undefined : 'a whole number of rows, at least 1',
  );

  for (const e of ensembles) {
    const ensemble = { ensemble: e.name };
    alarm(`QuorumMissesAlarm${idPart(e.name)}`, {
      AlarmName: `${prefix}-${e.name}-quorum-misses`,
      AlarmDescription: `Ensemble ${e.name} answered 503: fewer members answered than its quorum. The answer's details and the dashboard's member rows name the failing members.`,
      Namespace: NAMESPACE,
      MetricName: 'QuorumMisses',
      Dimensions: dims({ stage, ...ensemble }),
      Statistic: 'Sum',
      Period: period,
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
    });
    alarm(`LatencyP99Alarm${idPart(e.name)}`, {
      AlarmName: `${prefix}-${e.name}-latency-p99`,
      AlarmDescription: `Ensemble ${e.name}: the p99 latency of scored predictions was above ${alarms.p99LatencyMs} ms in 2 of the last 3 periods. Compare its members' latency on the dashboard.`,
      Namespace: NAMESPACE,
      MetricName: 'RequestLatency',
      Dimensions: dims({ stage, ...ensemble }),
      ExtendedStatistic: 'p99',
      Period: period,
      EvaluationPeriods: 3,
      DatapointsToAlarm: 2,
      Threshold: Number(alarms.p99LatencyMs),
      ComparisonOperator: 'GreaterThanThreshold',
    });
    alarm(`BatchJobsFailedAlarm${idPart(e.name)}`, {
      AlarmName: `${prefix}-${e.name}-batch-jobs-failed`,
      AlarmDescription: `A batch job of ensemble ${e.name} stopped (GET /v1/jobs/{jobId} says why; rows scored before it are kept).`,
      Namespace: NAMESPACE,
      MetricName: 'BatchJobsFailed',
      Dimensions: dims({ stage, ...ensemble }),
      Statistic: 'Sum',
      Period: period,
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
    });
    if (e.cache) {
      const errors = Number(alarms.cacheErrorsPerPeriod ?? 1);
      const path = (p) => ({ ...ensemble, path: p });
      alarm(`CacheErrorsAlarm${idPart(e.name)}`, {
        AlarmName: `${prefix}-${e.name}-cache-errors`,
        AlarmDescription: `The result cache of ensemble ${e.name} failed to be read or written (at least ${errors} time(s) a period) in 2 of the last 3 periods. Requests are answered uncached meanwhile; the api, ensemble, batchPlan and batchStore logs warn with the reason (table throttled or unreachable, a missing grant).`,
        Metrics: [
          { Id: 'sync', ReturnData: false, MetricStat: metric('CacheErrors', path('sync'), 'Sum') },
          { Id: 'batch', ReturnData: false, MetricStat: metric('CacheErrors', path('batch'), 'Sum') },
          {
            Id: 'errors',
            Label: `${e.name} result-cache errors`,
            ReturnData: true,
            Expression: 'FILL(sync, 0) + FILL(batch, 0)',
          },
        ],
        EvaluationPeriods: 3,
        DatapointsToAlarm: 2,
        Threshold: errors,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      });
    }
    for (const model of e.members) {
      const member = { ...ensemble, model };
      const minCalls = Number(alarms.memberMinCalls);
      alarm(`MemberFailureRateAlarm${idPart(`${e.name}/${model}`)}`, {
        AlarmName: `${prefix}-${e.name}-${model}-failure-rate`,
        AlarmDescription: `Member ${model} of ensemble ${e.name} failed or timed out on more than ${percent(Number(alarms.memberFailureRate))}% of its calls (at least ${minCalls} calls) in 2 of the last 3 periods. Its runner's logs name the error.`,
        Metrics: [
          { Id: 'failed', ReturnData: false, MetricStat: metric('MemberFailed', member, 'Sum') },
          { Id: 'timedout', ReturnData: false, MetricStat: metric('MemberTimedOut', member, 'Sum') },
          { Id: 'calls', ReturnData: false, MetricStat: metric('MemberOk', member, 'SampleCount') },
          {
            Id: 'rate',
            Label: `${model} failed or timed out (share of calls)`,
            ReturnData: true,
            Expression: `IF(calls >= ${minCalls}, (failed + timedout) / calls, 0)`,
          },
        ],
        EvaluationPeriods: 3,
        DatapointsToAlarm: 2,
        Threshold: Number(alarms.memberFailureRate),
        ComparisonOperator: 'GreaterThanThreshold',
      });
      // A counted member only: a shadow's agreement is what decides its rollout, watched on the
      // dashboard, and it changes no answer.
      const counted = { ...member, role: 'counted' };
      const hours = (agreementPeriod * 3) / 3600;
      alarm(`MemberAgreementAlarm${idPart(`${e.name}/${model}`)}`, {
        AlarmName: `${prefix}-${e.name}-${model}-agreement`,
        AlarmDescription: `Member ${model} of ensemble ${e.name} agreed with the ensemble's answer on fewer than ${percent(agreementMin)}% of the rows it was compared on (at least ${agreementRows} rows a period) in each of the last 3 periods (${hours} h): it is drifting from the other members. Its model or endpoint may have changed, or the data it sees has moved to where it disagrees. The dashboard's agreement row shows when it started; GET /v1/predictions/{id} shows its answers next to the others'. A member that fails or times out is the failure-rate alarm's, not this one's.`,
        Metrics: [
          {
            Id: 'agreed',
            ReturnData: false,
            MetricStat: metric('MemberRowsAgreed', counted, 'Sum', agreementPeriod),
          },
          {
            Id: 'compared',
            ReturnData: false,
            MetricStat: metric('MemberRowsCompared', counted, 'Sum', agreementPeriod),
          },
          {
            Id: 'agreement',
            Label: `${model} agreement with the answer (share of rows)`,
            ReturnData: true,
            Expression: `IF(compared >= ${agreementRows}, agreed / compared, 1)`,
          },
        ],
        EvaluationPeriods: 3,
        DatapointsToAlarm: 3,
        Threshold: agreementMin,
        ComparisonOperator: 'LessThanThreshold',
      });
    }
  }
  resources.FanoutDashboard = {
    Type: 'AWS::CloudWatch::Dashboard',
    Properties: {
      DashboardName: prefix,
      DashboardBody: {
        'Fn::Sub': JSON.stringify(
          dashboardBody({
            ensembles,
            stage,
            prefix,
            resources,
            templateAlarms,
            drift: { min: agreementMin, periodSeconds: agreementPeriod },
          }),
        ),
      },
    },
  };
  return resources;
}

/**
 * The dashboard: one row per concern (traffic and latency, members side by side, failures, batch,
 * and the result cache when an ensemble has one), then the state of every alarm. `${AWS::Region}`
 * and `${X.Arn}` are filled in by Fn::Sub. The agreement graphs carry the drift alarm's threshold
 * (`drift`), so whoever is paged sees where a member's line crossed it.
 */
function dashboardBody({ ensembles, stage, prefix, resources, templateAlarms, drift }) {
  const widgets = [];
  let y = 0;
  const row = (title, note) => {
    widgets.push({
      type: 'text',
      x: 0,
      y,
      width: 24,
      height: 1,
      properties: { markdown: `## ${title}${note ? ` · ${note}` : ''}` },
    });
    y += 1;
  };
  // Widgets flow left to right, `width` columns each, `height` rows per line.
  const grid = (items, width, height) => {
    items.forEach((properties, i) => {
      widgets.push({
        type: 'metric',
        x: (i * width) % 24,
        y: y + Math.floor((i * width) / 24) * height,
        width,
        height,
        // Fn::Sub fills in the region (the body is one Fn::Sub string).
        properties: { region: REGION, view: 'timeSeries', ...properties },
      });
    });
    y += Math.ceil((items.length * width) / 24) * height;
  };
  const m = (name, dimensions, options = {}) => [
    NAMESPACE,
    name,
    'stage',
    stage,
    ...Object.entries(dimensions).flat(),
    options,
  ];
  const perEnsemble = (name, stat, extra = {}) =>
    ensembles.map((e) => m(name, { ensemble: e.name }, { label: e.name, stat, ...extra }));
  const searchText = (name, keys, stat, seconds) =>
    `SEARCH('{${NAMESPACE},${[...keys, 'stage'].sort().join(',')}} MetricName="${name}" stage="${stage}"', '${stat}', ${seconds})`;
  // Series whose dimension values are not known in advance (error codes): one line per value found.
  const search = (name, keys, stat) => [
    [{ expression: searchText(name, keys, stat, 60), id: `s${name}`, label: '' }],
  ];

  row('Traffic and latency', `stage ${stage}`);
  grid(
    [
      {
        title: 'Prediction requests (per minute)',
        stat: 'Sum',
        period: 60,
        stacked: true,
        metrics: perEnsemble('Requests', 'Sum'),
      },
      { title: 'Latency p50 (ms)', period: 60, metrics: perEnsemble('RequestLatency', 'p50') },
      { title: 'Latency p99 (ms)', period: 60, metrics: perEnsemble('RequestLatency', 'p99') },
      {
        title: 'Degraded answers (share)',
        period: 60,
        yAxis: { left: { min: 0, max: 1 } },
        metrics: perEnsemble('DegradedAnswers', 'Average'),
      },
    ],
    6,
    6,
  );

  row('Members side by side', 'latency p99 and share of calls that failed or timed out');
  const memberWidgets = [];
  for (const e of ensembles) {
    memberWidgets.push({
      title: `${e.name}: member latency p99 (ms)`,
      period: 60,
      metrics: e.members.map((model) =>
        m('MemberLatency', { ensemble: e.name, model }, { label: model, stat: 'p99' }),
      ),
    });
    const metrics = [];
    e.members.forEach((model, i) => {
      const dims = { ensemble: e.name, model };
      metrics.push(
        [{ expression: `(f${i} + t${i}) / c${i}`, label: model, id: `r${i}` }],
        m('MemberFailed', dims, { stat: 'Sum', id: `f${i}`, visible: false }),
        m('MemberTimedOut', dims, { stat: 'Sum', id: `t${i}`, visible: false }),
        m('MemberOk', dims, { stat: 'SampleCount', id: `c${i}`, visible: false }),
      );
    });
    memberWidgets.push({
      title: `${e.name}: member failures + timeouts (share of calls)`,
      period: 300,
      yAxis: { left: { min: 0, max: 1 } },
      metrics,
    });
  }
  grid(memberWidgets, 12, 6);

  row('Agreement', "share of rows whose top label was the answer's: members, shadows, the canary");
  const agreementWidgets = [];
  for (const e of ensembles) {
    const metrics = [];
    const models = [...e.members.map((x) => [x, 'counted']), ...e.shadow.map((x) => [x, 'shadow'])];
    models.forEach(([model, role], i) => {
      const dims = { ensemble: e.name, model, role };
      const label = role === 'shadow' ? `${model} (shadow)` : model;
      metrics.push(
        [{ expression: `a${i} / n${i}`, label, id: `g${i}` }],
        m('MemberRowsAgreed', dims, { stat: 'Sum', id: `a${i}`, visible: false }),
        m('MemberRowsCompared', dims, { stat: 'Sum', id: `n${i}`, visible: false }),
      );
    });
    if (e.canary) {
      const dims = { ensemble: e.name, canary: e.canary };
      metrics.push(
        [{ expression: 'ca / cn', label: `canary ${e.canary}`, id: 'gc' }],
        m('CanaryRowsAgreed', dims, { stat: 'Sum', id: 'ca', visible: false }),
        m('CanaryRowsCompared', dims, { stat: 'Sum', id: 'cn', visible: false }),
      );
    }
    agreementWidgets.push({
      title: `${e.name}: agreement with the answer (share of rows)`,
      period: 300,
      yAxis: { left: { min: 0, max: 1 } },
      annotations: {
        horizontal: [
          {
            label: `drift alarm: under ${percent(drift.min)}% for 3 periods of ${drift.periodSeconds / 60} min (counted members)`,
            value: drift.min,
            color: '#d62728',
          },
        ],
      },
      metrics,
    });
  }
  grid(agreementWidgets, 12, 6);

  row('Failures', 'quorum misses, errors by code, member timeouts');
  grid(
    [
      { title: 'Quorum misses (503)', stat: 'Sum', period: 60, metrics: perEnsemble('QuorumMisses', 'Sum') },
      {
        title: '4xx by ensemble and code',
        period: 60,
        metrics: search('ClientErrors', ['code', 'ensemble'], 'Sum'),
      },
      {
        title: '5xx by ensemble and code',
        period: 60,
        metrics: search('ServerErrors', ['code', 'ensemble'], 'Sum'),
      },
      {
        title: 'Member timeouts',
        period: 60,
        metrics: search('MemberTimedOut', ['ensemble', 'model'], 'Sum'),
      },
    ],
    6,
    6,
  );

  row('Batch', 'jobs, rows and the upload trigger');
  grid(
    [
      {
        title: 'Jobs (all ensembles)',
        period: 300,
        metrics: [
          ['BatchJobsStarted', 'started'],
          ['BatchJobsSucceeded', 'succeeded'],
          ['BatchJobsFailed', 'failed'],
          ['BatchUploadsRejected', 'rejected uploads'],
        ].map(([name, label]) => [
          { expression: `SUM(${searchText(name, ['ensemble'], 'Sum', 300)})`, label, id: `j${name}` },
        ]),
      },
      {
        title: 'Rows scored per minute',
        period: 60,
        stacked: true,
        metrics: perEnsemble('BatchRowsStored', 'Sum'),
      },
      {
        title: 'Rows per second of finished jobs',
        period: 300,
        metrics: perEnsemble('BatchRowsPerSecond', 'Average'),
      },
      {
        title: 'Upload trigger: errors and dead letters',
        period: 300,
        metrics: [
          [
            'AWS/Lambda',
            'Errors',
            'FunctionName',
            `${prefix}-batchTrigger`,
            { stat: 'Sum', label: 'trigger errors' },
          ],
          [
            'AWS/Lambda',
            'AsyncEventsDropped',
            'FunctionName',
            `${prefix}-batchTrigger`,
            { stat: 'Sum', label: 'events dropped' },
          ],
          [
            'AWS/SQS',
            'ApproximateNumberOfMessagesVisible',
            'QueueName',
            `${prefix}-batch-trigger-dlq`,
            { stat: 'Maximum', label: 'waiting in the dead-letter queue' },
          ],
        ],
      },
    ],
    6,
    6,
  );

  const cached = ensembles.filter((e) => e.cache);
  if (cached.length > 0) {
    row('Result cache', 'hit rates of requests and of batch rows, failed reads and writes');
    const sync = (e) => ({ ensemble: e.name, path: 'sync' });
    const batchRate = [];
    cached.forEach((e, i) => {
      const dims = { ensemble: e.name, path: 'batch' };
      batchRate.push(
        [{ expression: `h${i} / (h${i} + m${i})`, label: e.name, id: `b${i}` }],
        m('CacheHits', dims, { stat: 'Sum', id: `h${i}`, visible: false }),
        m('CacheMisses', dims, { stat: 'Sum', id: `m${i}`, visible: false }),
      );
    });
    grid(
      [
        {
          // Path sync writes 1 (hit) or 0 (miss) per request: the average is the hit rate.
          title: 'Requests answered from the cache (share)',
          period: 60,
          yAxis: { left: { min: 0, max: 1 } },
          metrics: cached.map((e) => m('CacheHits', sync(e), { label: e.name, stat: 'Average' })),
        },
        {
          title: 'Batch rows answered from the cache (share of distinct rows)',
          period: 300,
          yAxis: { left: { min: 0, max: 1 } },
          metrics: batchRate,
        },
        {
          title: 'Cache read and write errors',
          period: 60,
          metrics: search('CacheErrors', ['ensemble', 'path'], 'Sum'),
        },
      ],
      8,
      6,
    );
  }

  const generated = Object.keys(resources).filter((id) => resources[id].Type === ALARM);
  const alarmIds = [...new Set([...templateAlarms, ...generated])];
  widgets.push({
    type: 'alarm',
    x: 0,
    y,
    width: 24,
    height: Math.min(12, 2 + Math.ceil(alarmIds.length / 4)),
    properties: {
      title: 'Alarms',
      alarms: alarmIds.map((id) => `\${${id}.Arn}`),
      sortBy: 'stateUpdatedTimestamp',
    },
  });
  return { start: '-PT3H', periodOverride: 'inherit', widgets };
}

/** A share as a percentage for a description: 0.07 is "7", not 7.000000000000001. */
const percent = (share) => Math.round(share * 10_000) / 100;

/**
 * A numeric `custom.alarms` setting, or its default when absent; a value that is not what `problem`
 * accepts stops the package with the setting named.
 */
function setting(alarms, name, fallback, problem) {
  const raw = alarms[name];
  if (raw === undefined || raw === null || raw === '') return fallback;
  const value = Number(raw);
  const why = Number.isFinite(value) ? problem(value) : 'a number';
  if (why) throw new Error(`custom.alarms.${name} is ${JSON.stringify(raw)}: it must be ${why}`);
  return value;
}

class ObservabilityPlugin {
  constructor(serverless) {
    this.serverless = serverless;
    this.hooks = {
      'after:aws:package:finalize:mergeCustomProviderResources': () => this.run(),
    };
  }

  run() {
    const service = this.serverless.service;
    const env = service.provider.environment ?? {};
    try {
      const path = resolve(this.serverless.serviceDir, env.FANOUT_MANIFEST ?? 'models/manifest.json');
      const template = service.provider.compiledCloudFormationTemplate;
      // Every alarm serverless.yml declares goes on the dashboard too, whatever its name.
      const templateAlarms = Object.keys(template.Resources).filter(
        (id) => template.Resources[id].Type === ALARM,
      );
      const resources = observabilityResources({
        manifest: JSON.parse(readFileSync(path, 'utf8')),
        service: service.service,
        stage: env.FANOUT_STAGE ?? service.provider.stage,
        sagemakerMembers: env.FANOUT_SAGEMAKER_MEMBERS,
        alarms: service.custom.alarms,
        templateAlarms,
      });
      for (const id of [TOPIC, DEAD_LETTER_QUEUE, TRIGGER_FUNCTION]) {
        if (!template.Resources[id]) throw new Error(`${id} is missing from the template`);
      }
      Object.assign(template.Resources, resources);
    } catch (err) {
      throw new this.serverless.classes.Error(`observability: ${err.message}`);
    }
  }
}

module.exports = ObservabilityPlugin;
module.exports.observabilityResources = observabilityResources;
module.exports.servedEnsembles = servedEnsembles;
module.exports.NAMESPACE = NAMESPACE;
