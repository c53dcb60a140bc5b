// fanout's local dashboard: polls /dashboard/data (built from the handlers' EMF lines) and draws it
// with Chart.js, served by the stack itself. Every text from the data goes in as text, never HTML:
// prediction ids and file names are the clients' own strings.

const REFRESH_MS = 2000;
const PALETTE = [
  '#3d5afe',
  '#00a99d',
  '#f29d38',
  '#c2185b',
  '#7e57c2',
  '#43a047',
  '#ef5350',
  '#26a6d1',
  '#8d6e63',
  '#5c6bc0',
  '#d4a017',
  '#00838f',
  '#ad1457',
  '#6d4c41',
  '#2e7d32',
  '#ff7043',
];
const COLORS = {
  p50: '#3d5afe',
  p90: '#9c6ade',
  p99: '#e8590c',
  requests: 'rgba(61, 90, 254, 0.16)',
  cacheHits: 'rgba(0, 169, 157, 0.38)',
};
const OUTCOME = { ok: '#1e9e6a', failed: '#d93a3a', timeout: '#e08a00' };

Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
Chart.defaults.font.size = 11;
Chart.defaults.color = '#6b7689';
Chart.defaults.animation = false;
Chart.defaults.maintainAspectRatio = false;
Chart.defaults.plugins.legend.labels.boxWidth = 10;
Chart.defaults.plugins.legend.labels.boxHeight = 10;

/** Draws each bar's value at its end, so the figures read without hovering. */
const valueLabels = {
  id: 'valueLabels',
  afterDatasetsDraw(chart, _args, options) {
    if (!options || !options.format) return;
    const { ctx } = chart;
    ctx.save();
    ctx.font = `600 11px ${Chart.defaults.font.family}`;
    ctx.textBaseline = 'middle';
    chart.data.datasets.forEach((dataset, d) => {
      const meta = chart.getDatasetMeta(d);
      if (meta.hidden || dataset.noLabels) return;
      meta.data.forEach((bar, i) => {
        const value = dataset.data[i];
        const text = options.format(value, dataset, i);
        if (!text) return;
        ctx.fillStyle = '#1b2330';
        ctx.fillText(text, bar.x + 4, bar.y);
      });
    });
    ctx.restore();
  },
};

/** A dashed line across the chart at `options.value` on the `options.axis` scale, labelled. */
const thresholdLine = {
  id: 'thresholdLine',
  afterDatasetsDraw(chart, _args, options) {
    if (!options || typeof options.value !== 'number') return;
    const scale = chart.scales[options.axis];
    if (!scale) return;
    const { ctx, chartArea } = chart;
    const at = scale.getPixelForValue(options.value);
    ctx.save();
    ctx.strokeStyle = OUTCOME.failed;
    ctx.setLineDash([5, 4]);
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    if (scale.isHorizontal()) {
      ctx.moveTo(at, chartArea.top);
      ctx.lineTo(at, chartArea.bottom);
    } else {
      ctx.moveTo(chartArea.left, at);
      ctx.lineTo(chartArea.right, at);
    }
    ctx.stroke();
    if (options.label) {
      ctx.setLineDash([]);
      ctx.fillStyle = OUTCOME.failed;
      ctx.font = `600 10px ${Chart.defaults.font.family}`;
      if (scale.isHorizontal()) {
        // Above the plot (the chart leaves room with its top padding), clear of the bars.
        ctx.textAlign = 'center';
        ctx.textBaseline = 'bottom';
        ctx.fillText(options.label, at, chartArea.top - 2);
      } else {
        ctx.textBaseline = 'bottom';
        ctx.fillText(options.label, chartArea.left + 4, at - 2);
      }
    }
    ctx.restore();
  },
};

const charts = new Map();
const memberColors = new Map();

function colorOf(model) {
  if (!memberColors.has(model)) memberColors.set(model, PALETTE[memberColors.size % PALETTE.length]);
  return memberColors.get(model);
}

/** A DOM element with attributes and children (strings become text nodes). */
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k.startsWith('data-')) node.setAttribute(k, v);
    else if (k === 'style') node.setAttribute('style', v);
    else node[k] = v;
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const fmtMs = (v) =>
  v === null || v === undefined ? '–' : v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
const fmtPct = (v) =>
  v === null || v === undefined ? '–' : v === 0 ? '0%' : v < 0.001 ? '<0.1%' : `${(v * 100).toFixed(1)}%`;
/** How long the deployed drift alarm waits: three of its periods. */
const alarmSpan = (periodSeconds) =>
  periodSeconds % 3600 === 0
    ? `three periods of ${periodSeconds / 3600} h (${(periodSeconds * 3) / 3600} h)`
    : `three periods of ${periodSeconds / 60} min`;

/** A setting's share as people write it: 0.9 is 90%, 0.925 is 92.5%. */
const fmtShare = (v) => `${Number((v * 100).toFixed(1))}%`;
const fmtCount = (v) => (v >= 10000 ? `${(v / 1000).toFixed(1)}k` : String(Math.round(v)));
const fmtRate = (v) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
const clock = (ms) =>
  new Date(ms).toLocaleTimeString('en-GB', {
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
    hour12: false,
  });

/** 3600 → "1 h", 90 → "90 s". */
function duration(seconds) {
  if (seconds % 86400 === 0) return `${seconds / 86400} d`;
  if (seconds % 3600 === 0) return `${seconds / 3600} h`;
  if (seconds % 60 === 0) return `${seconds / 60} min`;
  return `${seconds} s`;
}

/** "5 members + 1 shadow · soft-vote · quorum 3 · cache 1 h · canary v2 10%", from what is served. */
function describeEnsemble(e, all) {
  const canaryOf = all.filter((x) => x.canary && x.canary.ensemble === e.name).map((x) => x.name);
  const shadows = (e.shadow || []).length;
  const counted = e.members.length - shadows;
  return [
    `${counted} member${counted === 1 ? '' : 's'}${shadows ? ` + ${shadows} shadow${shadows === 1 ? '' : 's'}` : ''}`,
    e.strategy,
    e.quorum ? `quorum ${e.quorum}` : null,
    e.cacheTtlSeconds ? `cache ${duration(e.cacheTtlSeconds)}` : null,
    e.canary ? `canary ${e.canary.ensemble} ${e.canary.percent}%` : null,
    canaryOf.length ? `canary of ${canaryOf.join(', ')}` : null,
  ]
    .filter(Boolean)
    .join(' · ');
}

function uptime(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
}

function setStatus(live, data) {
  const status = document.getElementById('status');
  status.className = `status ${live ? 'live' : 'down'}`;
  document.getElementById('status-text').textContent = live
    ? `live · updated ${clock(data.generatedAt)} · up ${uptime(data.generatedAt - data.startedAt)}`
    : 'the stack does not answer; retrying';
}

function kpi(label, value, unit, tone) {
  return el(
    'div',
    { class: `card kpi ${tone || ''}` },
    el('div', { class: 'label' }, label),
    el('div', { class: 'value' }, value, unit ? el('small', {}, unit) : null),
  );
}

function renderKpis(data) {
  const o = data.overall;
  const errors = o.clientErrors + o.serverErrors;
  const box = document.getElementById('kpis');
  box.replaceChildren(
    kpi('Requests / s', fmtRate(o.rps), null),
    kpi('Latency p50', fmtMs(o.p50), 'ms'),
    kpi('Latency p99', fmtMs(o.p99), 'ms'),
    kpi('Degraded answers', fmtPct(o.degradedRate), null, o.degradedRate ? 'warn' : ''),
    kpi('Quorum misses', fmtCount(o.quorumMisses), null, o.quorumMisses ? 'bad' : ''),
    kpi(
      'Errors (4xx / 5xx)',
      `${fmtCount(o.clientErrors)} / ${fmtCount(o.serverErrors)}`,
      null,
      errors ? 'warn' : '',
    ),
  );
  document.getElementById('window-note').textContent =
    `figures over the last ${Math.round(data.summarySeconds / 60)} minutes, charts in ${data.bucketSeconds}-second steps`;
}

/** Creates a chart once per key and updates its data afterwards (no flicker, no leak). */
function chartFor(key, canvas, config) {
  let chart = charts.get(key);
  if (chart && chart.canvas !== canvas) {
    chart.destroy();
    chart = undefined;
  }
  if (!chart) {
    chart = new Chart(canvas, config);
    charts.set(key, chart);
  } else {
    chart.data = config.data;
    chart.options = config.options;
    chart.update('none');
  }
  return chart;
}

/** Keeps one DOM node per key inside a container, in order, creating missing ones. */
function keyed(container, keys, make) {
  const existing = new Map([...container.children].map((n) => [n.dataset.key, n]));
  const nodes = keys.map((k) => existing.get(k) || make(k));
  const current = [...container.children];
  // Moving a chart's canvas in the DOM detaches it, and Chart.js stops drawing a detached canvas:
  // touch the DOM only when the set or the order of cards changed.
  const changed = nodes.length !== current.length || nodes.some((n, i) => current[i] !== n);
  if (changed) container.replaceChildren(...nodes);
  for (const [k, chart] of charts) {
    if (k.startsWith(`${container.id}:`) && !nodes.some((n) => n.contains(chart.canvas))) {
      chart.destroy();
      charts.delete(k);
    }
  }
  if (changed) {
    for (const [k, chart] of charts) if (k.startsWith(`${container.id}:`)) chart.resize();
  }
  return nodes;
}

function stat(label, value, tone) {
  return el('span', { class: tone || '' }, `${label} `, el('b', {}, value));
}

function renderEnsembles(data) {
  const active = data.ensembles.filter((e) => e.totalRequests > 0);
  const idle = data.ensembles.filter((e) => e.totalRequests === 0);
  const labels = data.times.map(clock);
  const nodes = keyed(
    document.getElementById('ensembles'),
    active.map((e) => e.name),
    (name) =>
      el(
        'article',
        { class: 'card ensemble', 'data-key': name, 'data-ensemble': name },
        el('header', {}, el('h3', {}, name), el('span', { class: 'subtitle' })),
        el('div', { class: 'stats' }),
        el(
          'div',
          { class: 'chart' },
          el('canvas', { 'aria-label': `${name}: requests and latency over time` }),
        ),
      ),
  );
  active.forEach((e, i) => {
    const node = nodes[i];
    const r = e.recent;
    node.querySelector('.subtitle').textContent = describeEnsemble(e, data.ensembles);
    node
      .querySelector('.stats')
      .replaceChildren(
        stat('req/s', fmtRate(r.rps)),
        stat('p50', `${fmtMs(r.p50)} ms`),
        stat('p90', `${fmtMs(r.p90)} ms`),
        stat('p99', `${fmtMs(r.p99)} ms`),
        stat('degraded', fmtPct(r.degradedRate), r.degradedRate ? 'warn' : ''),
        stat('quorum misses', fmtCount(r.quorumMisses), r.quorumMisses ? 'bad' : ''),
        stat(
          'errors',
          fmtCount(r.clientErrors + r.serverErrors),
          r.clientErrors + r.serverErrors ? 'warn' : '',
        ),
        ...cacheStats(e),
        ...canaryStats(e),
      );
    const cached = Boolean(e.cacheTtlSeconds);
    const perSecond = (series) => series.map((n) => n / data.bucketSeconds);
    // With a cache, the requests bar is split: answered from the cache, and the rest.
    const hits = perSecond(e.series.cacheHits);
    const rest = perSecond(e.series.requests.map((n, i) => Math.max(0, n - e.series.cacheHits[i])));
    chartFor(`ensembles:${e.name}`, node.querySelector('canvas'), {
      data: {
        labels,
        datasets: [
          line('p99', e.series.p99, COLORS.p99),
          line('p90', e.series.p90, COLORS.p90),
          line('p50', e.series.p50, COLORS.p50),
          {
            type: 'bar',
            label: cached ? 'other requests/s' : 'requests/s',
            data: cached ? rest : perSecond(e.series.requests),
            backgroundColor: COLORS.requests,
            borderWidth: 0,
            yAxisID: 'rps',
            stack: 'requests',
            order: 10,
          },
          ...(cached
            ? [
                {
                  type: 'bar',
                  label: 'cache hits/s',
                  data: hits,
                  backgroundColor: COLORS.cacheHits,
                  borderWidth: 0,
                  yAxisID: 'rps',
                  stack: 'requests',
                  order: 11,
                },
              ]
            : []),
        ],
      },
      options: {
        interaction: { mode: 'index', intersect: false },
        plugins: { legend: { position: 'top', align: 'end' } },
        scales: {
          // Stacked so the two request bars share one column (the lines' own scale is not stacked).
          x: { stacked: true, ticks: { maxTicksLimit: 8, maxRotation: 0 }, grid: { display: false } },
          ms: { position: 'left', beginAtZero: true, title: { display: true, text: 'latency (ms)' } },
          rps: {
            position: 'right',
            beginAtZero: true,
            stacked: true,
            grid: { display: false },
            title: { display: true, text: 'requests/s' },
          },
        },
      },
    });
  });
  document.getElementById('idle').textContent = idle.length
    ? `No traffic yet: ${idle.map((e) => e.name).join(', ')}.`
    : '';
}

/** The result cache's figures for an ensemble that has one: hit rates, and errors if any. */
function cacheStats(e) {
  if (!e.cacheTtlSeconds) return [];
  const c = e.recent.cache;
  const out = [stat('cache hits', c.lookups ? fmtPct(c.hitRate) : '–')];
  if (c.batchRows) out.push(stat('batch rows cached', fmtPct(c.batchHitRate)));
  if (c.errors) out.push(stat('cache errors', fmtCount(c.errors), 'warn'));
  return out;
}

/** How an ensemble's answers and its canary's compared, where both were known. */
function canaryStats(e) {
  if (!e.canary) return [];
  const a = e.canary.agreement;
  if (!a.compared) return [stat(`canary ${e.canary.ensemble}`, 'no rows compared yet')];
  return [
    stat(`agrees with ${e.canary.ensemble}`, fmtPct(a.rate), a.rate < 0.95 ? 'warn' : ''),
    stat('mean difference', a.meanAbsDiff.toFixed(3)),
  ];
}

function line(label, data, color) {
  return {
    type: 'line',
    label,
    data,
    borderColor: color,
    backgroundColor: color,
    borderWidth: 2,
    pointRadius: 0,
    spanGaps: true,
    tension: 0.25,
    yAxisID: 'ms',
  };
}

function renderMembers(data) {
  const drift = data.drift;
  const active = data.ensembles.filter((e) => e.members.some((m) => m.calls > 0));
  const container = document.getElementById('members');
  const nodes = keyed(
    container,
    active.map((e) => e.name),
    (name) =>
      el(
        'article',
        { class: 'card member-card', 'data-key': name, 'data-ensemble': name },
        el('header', {}, el('h3', {}, name), el('span', { class: 'subtitle' })),
        el(
          'div',
          { class: 'pair' },
          el(
            'div',
            {},
            el('div', { class: 'chart-title' }, 'Latency per call (ms): median and 99th percentile'),
            el('div', { class: 'chart latency' }, el('canvas', { 'aria-label': `${name}: member latency` })),
          ),
          el(
            'div',
            {},
            el('div', { class: 'chart-title' }, 'Outcome of each call (% of calls)'),
            el(
              'div',
              { class: 'chart outcomes' },
              el('canvas', { 'aria-label': `${name}: member outcomes` }),
            ),
          ),
          el(
            'div',
            { class: 'wide' },
            el(
              'div',
              { class: 'chart-title' },
              "Agreement with the ensemble's answer (% of rows whose top label was the answer's; shadows marked)",
            ),
            el(
              'div',
              { class: 'chart agreement' },
              el('canvas', { 'aria-label': `${name}: member agreement with the answer` }),
            ),
            el('p', { class: 'drift-note', hidden: true }),
          ),
          el(
            'div',
            { class: 'wide' },
            el('div', { class: 'chart-title agreement-time-title' }),
            el(
              'div',
              { class: 'chart agreement-time' },
              el('canvas', { 'aria-label': `${name}: member agreement over time` }),
            ),
          ),
        ),
      ),
  );
  if (active.length === 0) {
    container.replaceChildren(el('div', { class: 'card empty' }, 'No member has been called yet.'));
    return;
  }
  active.forEach((e, i) => {
    const node = nodes[i];
    const members = e.members;
    const calls = members.reduce((n, m) => n + m.calls, 0);
    const shadows = members.filter((m) => m.shadow).length;
    node.querySelector('.subtitle').textContent =
      `${fmtCount(calls)} member calls${shadows ? ` · ${shadows} shadow${shadows === 1 ? '' : 's'}` : ''}`;
    const height = `${Math.max(110, 28 * members.length + 44)}px`;
    for (const box of node.querySelectorAll('.chart:not(.agreement-time)')) box.style.height = height;
    const labels = members.map((m) => m.model);
    chartFor(`members:${e.name}:latency`, node.querySelector('.latency canvas'), {
      type: 'bar',
      data: {
        labels,
        datasets: [
          {
            label: 'p50',
            data: members.map((m) => m.p50),
            backgroundColor: members.map((m) => colorOf(m.model)),
          },
          {
            label: 'p99',
            data: members.map((m) => m.p99),
            backgroundColor: members.map((m) => `${colorOf(m.model)}55`),
          },
        ],
      },
      options: {
        indexAxis: 'y',
        layout: { padding: { right: 56 } },
        plugins: {
          legend: { display: false },
          valueLabels: { format: (v, d) => (v === null ? '' : `${d.label} ${fmtMs(v)}`) },
          tooltip: { callbacks: { label: (c) => `${c.dataset.label}: ${fmtMs(c.raw)} ms` } },
        },
        scales: {
          x: { beginAtZero: true, grace: '12%', title: { display: true, text: 'ms' } },
          y: { grid: { display: false }, ticks: { color: '#1b2330', font: { weight: '600' } } },
        },
      },
      plugins: [valueLabels],
    });
    const share = (m, k) =>
      m.calls ? (k === 'ok' ? 1 - m.failedRate - m.timeoutRate : m[`${k}Rate`]) * 100 : 0;
    chartFor(`members:${e.name}:outcomes`, node.querySelector('.outcomes canvas'), {
      type: 'bar',
      data: {
        labels,
        datasets: [
          {
            label: 'ok',
            data: members.map((m) => share(m, 'ok')),
            backgroundColor: OUTCOME.ok,
            noLabels: true,
          },
          { label: 'failed', data: members.map((m) => share(m, 'failed')), backgroundColor: OUTCOME.failed },
          {
            label: 'timeout',
            data: members.map((m) => share(m, 'timeout')),
            backgroundColor: OUTCOME.timeout,
          },
        ],
      },
      options: {
        indexAxis: 'y',
        plugins: {
          legend: { position: 'top', align: 'end' },
          tooltip: {
            callbacks: {
              label: (c) => `${c.dataset.label}: ${c.raw.toFixed(1)}% of ${members[c.dataIndex].calls} calls`,
            },
          },
        },
        scales: {
          x: { stacked: true, min: 0, max: 100, ticks: { callback: (v) => `${v}%` } },
          y: { stacked: true, grid: { display: false }, ticks: { display: false } },
        },
      },
    });
    chartFor(`members:${e.name}:agreement`, node.querySelector('.agreement canvas'), {
      type: 'bar',
      data: {
        labels,
        datasets: [
          {
            label: 'agreement',
            data: members.map((m) => (m.agreement.rate === null ? null : m.agreement.rate * 100)),
            backgroundColor: members.map((m) =>
              m.agreement.drifting ? OUTCOME.failed : m.shadow ? `${colorOf(m.model)}88` : colorOf(m.model),
            ),
            borderColor: members.map((m) => colorOf(m.model)),
            borderWidth: members.map((m) => (m.shadow ? 2 : 0)),
          },
        ],
      },
      options: {
        indexAxis: 'y',
        layout: { padding: { right: 180, top: 14 } },
        plugins: {
          legend: { display: false },
          valueLabels: {
            format: (v, _d, i) => {
              const m = members[i];
              if (v === null) return m.shadow ? 'shadow · no rows yet' : '';
              const diff = `diff ${m.agreement.meanAbsDiff.toFixed(3)}`;
              const mark = m.shadow ? 'shadow · ' : m.agreement.drifting ? 'drifting · ' : '';
              return `${mark}${fmtPct(m.agreement.rate)} · ${diff}`;
            },
          },
          thresholdLine: {
            axis: 'x',
            value: drift.agreementMin * 100,
            label: `alarm ${fmtShare(drift.agreementMin)}`,
          },
          tooltip: {
            callbacks: {
              label: (c) => {
                const m = members[c.dataIndex];
                return `${fmtPct(m.agreement.rate)} of ${m.agreement.compared} rows agreed; mean difference ${m.agreement.meanAbsDiff}`;
              },
            },
          },
        },
        scales: {
          x: { min: 0, max: 100, ticks: { callback: (v) => `${v}%` } },
          y: { grid: { display: false }, ticks: { color: '#1b2330', font: { weight: '600' } } },
        },
      },
      plugins: [valueLabels, thresholdLine],
    });
    const drifting = members.filter((m) => m.agreement.drifting);
    const note = node.querySelector('.drift-note');
    note.hidden = drifting.length === 0;
    note.textContent = drifting
      .map(
        (m) =>
          `${m.model} agreed with the answer on ${fmtPct(m.agreement.rate)} of ${fmtCount(m.agreement.compared)} rows over the last ${Math.round(data.summarySeconds / 60)} minutes, under the drift alarm's ${fmtShare(drift.agreementMin)}: deployed, it pages once that holds for ${alarmSpan(drift.periodSeconds)}.`,
      )
      .join(' ');
    node.dataset.drifting = drifting.map((m) => m.model).join(',');
    node.querySelector('.agreement-time-title').textContent =
      `Agreement over time (each point: the ${Math.round(drift.spanSeconds)} seconds up to it; dashed: the drift alarm's ${fmtShare(drift.agreementMin)}, judged on at least ${fmtCount(drift.minRows)} rows)`;
    // The canary's comparison with this ensemble, drawn with the members as CloudWatch's graph has it.
    const canaryLine = e.canary
      ? [
          {
            label: `canary ${e.canary.ensemble}`,
            data: e.canary.series.map((v) => (v === null ? null : v * 100)),
            borderColor: '#6b7689',
            backgroundColor: '#6b7689',
            borderWidth: 2,
            borderDash: [2, 2],
            pointRadius: 1.5,
            spanGaps: false,
            tension: 0.2,
          },
        ]
      : [];
    // Healthy members sit near 100%: the scale starts under the lowest point or the threshold.
    const points = [
      ...members.map((m) => m.series.agreement),
      ...(e.canary ? [e.canary.series] : []),
    ].flatMap((series) => series.filter((v) => v !== null));
    const low = Math.min(drift.agreementMin, ...points) * 100;
    const floor = Math.max(0, Math.floor((low - 5) / 10) * 10);
    chartFor(`members:${e.name}:agreement-time`, node.querySelector('.agreement-time canvas'), {
      type: 'line',
      data: {
        labels: data.times.map(clock),
        datasets: members
          .map((m) => ({
            label: m.shadow ? `${m.model} (shadow)` : m.model,
            data: m.series.agreement.map((v) => (v === null ? null : v * 100)),
            borderColor: colorOf(m.model),
            backgroundColor: colorOf(m.model),
            borderWidth: m.agreement.drifting ? 3 : 2,
            borderDash: m.shadow ? [4, 3] : [],
            // A point alone (one burst of traffic) still shows.
            pointRadius: 1.5,
            spanGaps: false,
            tension: 0.2,
          }))
          .concat(canaryLine),
      },
      options: {
        interaction: { mode: 'index', intersect: false },
        plugins: {
          // Line samples: a shadow's and the canary's dashes show in the legend as on the chart.
          legend: {
            position: 'top',
            align: 'end',
            labels: { usePointStyle: true, pointStyle: 'line', pointStyleWidth: 22 },
          },
          thresholdLine: { axis: 'y', value: drift.agreementMin * 100 },
          tooltip: {
            callbacks: { label: (c) => (c.raw === null ? '' : `${c.dataset.label}: ${c.raw.toFixed(1)}%`) },
          },
        },
        scales: {
          x: { ticks: { maxTicksLimit: 8, maxRotation: 0 }, grid: { display: false } },
          y: { min: floor, max: 100, ticks: { callback: (v) => `${v}%` } },
        },
      },
      plugins: [thresholdLine],
    });
    node.dataset.members = labels.join(',');
    node.dataset.shadows = members
      .filter((m) => m.shadow)
      .map((m) => m.model)
      .join(',');
  });
}

function predictionRow(p) {
  const failed = p.httpStatus && p.httpStatus >= 400;
  const badge = failed
    ? el(
        'span',
        { class: 'badge failed' },
        `${p.httpStatus} ${p.errorCode === 'quorum_not_met' ? 'quorum' : ''}`.trim(),
      )
    : p.replayed
      ? el('span', { class: 'badge replay' }, 'REPLAY')
      : p.cached
        ? el('span', { class: 'badge cached' }, 'CACHED')
        : p.degraded
          ? el('span', { class: 'badge degraded' }, 'DEGRADED')
          : el('span', { class: 'badge ok' }, 'OK');
  const chips = p.failedMembers.length
    ? p.failedMembers.map((f) => el('span', { class: `chip ${f.status}` }, `${f.model} ${f.status}`))
    : [
        el(
          'span',
          { class: 'time' },
          failed ? p.errorCode || '' : p.cached ? 'answered from the cache' : 'all members answered',
        ),
      ];
  return el(
    'li',
    {
      class: failed ? 'failed' : p.degraded ? 'degraded' : '',
      'data-prediction': p.id || '',
      'data-degraded': p.degraded ? 'true' : 'false',
      'data-cached': p.cached ? 'true' : 'false',
    },
    el('span', { class: 'time' }, clock(p.at)),
    badge,
    el('span', { class: 'mono', title: `${p.ensemble} · ${p.id || ''}` }, p.ensemble),
    el('span', { class: 'chips' }, chips),
    el('span', { class: 'latency' }, p.latencyMs === undefined ? '' : `${fmtMs(p.latencyMs)} ms`),
  );
}

function renderPredictions(data) {
  const list = document.getElementById('predictions');
  const items = data.predictions.slice(0, 10);
  list.replaceChildren(
    ...(items.length
      ? items.map(predictionRow)
      : [
          el(
            'li',
            { class: 'empty' },
            'No prediction yet. POST one to /v1/ensembles/{ensemble}/predictions.',
          ),
        ]),
  );
}

function jobRow(j) {
  const tone = { RUNNING: 'running', SUCCEEDED: 'ok', FAILED: 'failed', REJECTED: 'failed' }[j.status];
  const total = j.rowsTotal || 0;
  const done = Math.min(j.rowsDone, total || j.rowsDone);
  const pct = (n) => (total ? `${(100 * n) / total}%` : '0%');
  const ok = Math.max(0, j.rowsOk - j.rowsDegraded);
  const figures = [
    total
      ? `${fmtCount(done)} of ${fmtCount(total)} rows`
      : j.status === 'REJECTED'
        ? 'file rejected'
        : 'preparing…',
    j.rowsFailed ? `${fmtCount(j.rowsFailed)} failed` : null,
    j.rowsDegraded ? `${fmtCount(j.rowsDegraded)} degraded` : null,
    j.rowsCached ? `${fmtCount(j.rowsCached)} from the cache` : null,
    j.rowsPerSecond ? `${fmtCount(j.rowsPerSecond)} rows/s` : null,
    j.durationSeconds !== undefined ? `${j.durationSeconds.toFixed(1)} s` : null,
  ].filter(Boolean);
  return el(
    'li',
    { 'data-job': j.jobId, 'data-status': j.status },
    el(
      'div',
      { class: 'job-head' },
      el(
        'span',
        { class: 'what' },
        el('span', { class: `badge ${tone}` }, j.status),
        el('b', {}, j.ensemble),
        el('span', { class: 'mono', title: j.jobId }, j.key || j.jobId),
      ),
      el('span', { class: 'time' }, clock(j.startedAt)),
    ),
    el(
      'div',
      { class: 'progress', title: `${done} of ${total} rows` },
      el('span', { class: 'ok', style: `width:${pct(ok)}` }),
      el('span', { class: 'degraded', style: `width:${pct(j.rowsDegraded)}` }),
      el('span', { class: 'failed', style: `width:${pct(j.rowsFailed)}` }),
    ),
    el(
      'div',
      { class: 'job-figures' },
      figures.map((f) => el('span', {}, f)),
    ),
  );
}

function renderJobs(data) {
  const list = document.getElementById('jobs');
  const items = data.jobs.slice(0, 8);
  list.replaceChildren(
    ...(items.length
      ? items.map(jobRow)
      : [el('li', { class: 'empty' }, 'No batch job yet. Upload a file with npx fanout batch.')]),
  );
}

async function refresh() {
  try {
    const res = await fetch('/dashboard/data', { cache: 'no-store' });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const data = await res.json();
    renderKpis(data);
    renderEnsembles(data);
    renderMembers(data);
    renderPredictions(data);
    renderJobs(data);
    setStatus(true, data);
    document.body.dataset.ready = 'true';
    document.body.dataset.generatedAt = String(data.generatedAt);
  } catch {
    setStatus(false);
  } finally {
    setTimeout(refresh, REFRESH_MS);
  }
}

refresh();
