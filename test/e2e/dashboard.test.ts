import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import type { Browser, Page } from 'puppeteer-core';
import { loadManifest } from '../../functions/core/manifest.js';
import { readDataset } from '../models/data.js';
import { browserMissing, launchBrowser } from '../support/browser.js';
import { fitDiagonalLda, linearOnnx } from '../support/onnx-graphs.js';
import { http, type StackProcess, startStackProcess } from '../support/stack-process.js';

// The dashboard as a person sees it: `npm start` on a manifest the test brings (the bundled
// models plus a broken one, a result cache on two ensembles), real traffic over HTTP, a batch job
// through the CLI, then /dashboard in headless Chromium. The screenshot goes to the system's temp
// folder, or to docs/ for the README with FANOUT_UPDATE_SCREENSHOT=1 (`npm run docs:screenshot`):
// a test run must not leave a tracked file changed.

const ROOT = resolve(import.meta.dirname, '../..');
const SCREENSHOT = process.env.FANOUT_UPDATE_SCREENSHOT
  ? join(ROOT, 'docs/dashboard.png')
  : join(tmpdir(), 'fanout-dashboard.png');
const BROKEN = 'bc-broken';
const TRIAL = 'breast-cancer-trial';
const DOOMED = 'breast-cancer-doomed';
// The result cache is on for these (set by the test, whatever the bundled manifest says): the
// first gets distinct rows and then the batch job, the second the same row again and again.
const CACHED = 'breast-cancer-stacked';
const REPEATED = 'wine';
// A member a user brought that answers every row, mostly with the other label (its classes
// swapped): the drift alarm's rule holds it below, and the page must say so.
const DRIFTING = 'bc-swapped';
const DRIFT = 'breast-cancer-drift';
const DRIFT_ROWS = 80;

const missing = browserMissing();
if (missing) console.warn(`dashboard browser test SKIPPED: ${missing}`);

/**
 * The bundled manifest, paths made absolute, plus a member whose ONNX file is corrupt and two
 * ensembles that use it: one that still meets its quorum (degraded answers), one that cannot. The
 * result cache is on for CACHED and REPEATED only.
 */
function manifestWithBrokenMember(dir: string): string {
  const source = join(ROOT, 'models/manifest.json');
  const doc = JSON.parse(readFileSync(source, 'utf8'));
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(dirname(source), p));
  for (const m of doc.models) {
    if (m.file) m.file = abs(m.file);
    if (m.localFile) m.localFile = abs(m.localFile);
  }
  for (const e of doc.ensembles) {
    if (e.stacking?.file) e.stacking.file = abs(e.stacking.file);
    e.cache = [CACHED, REPEATED].includes(e.name) ? { ttlSeconds: 3600 } : undefined;
  }
  const template = doc.models.find((m: { id: string }) => m.id === 'bc-logreg');
  doc.models.push({
    ...template,
    id: BROKEN,
    file: join(ROOT, 'test/e2e/fixtures/broken.onnx'),
    version: '0.0.1',
  });
  const data = readDataset('data/breast_cancer.csv');
  const lda = fitDiagonalLda(data.rows, data.targets, 2);
  const swapped = {
    weights: lda.weights.map((w) => [w[1] as number, w[0] as number]),
    bias: [lda.bias[1] as number, lda.bias[0] as number],
  };
  writeFileSync(join(dir, 'swapped.onnx'), linearOnnx(swapped, { input: 'float_input', label: true }));
  doc.models.push({ ...template, id: DRIFTING, file: join(dir, 'swapped.onnx'), version: '0.0.1' });
  doc.ensembles.push(
    { name: TRIAL, members: ['bc-logreg', 'bc-mlp', BROKEN], strategy: 'soft-vote', quorum: 2 },
    { name: DOOMED, members: ['bc-logreg', BROKEN], strategy: 'soft-vote', quorum: 2 },
    { name: DRIFT, members: ['bc-logreg', 'bc-mlp', DRIFTING], strategy: 'soft-vote', quorum: 2 },
  );
  const file = join(dir, 'manifest.json');
  writeFileSync(file, JSON.stringify(doc, null, 2));
  return file;
}

const rows = readFileSync(join(ROOT, 'models/data/breast_cancer.csv'), 'utf8')
  .trim()
  .split('\n')
  .slice(1)
  .map((l) => l.split(',').slice(0, 30).map(Number));

function batchCsv(features: readonly string[]): string {
  const header = ['id', ...features.map((f) => (f.includes(',') ? `"${f}"` : f))].join(',');
  return `${[header, ...rows.map((r, i) => `p${i},${r.join(',')}`)].join('\n')}\n`;
}

let dir: string;
let stack: StackProcess;
let manifestFile: string;
let wineRows: number[][];
const sent = { ok: 0, degraded: 0, quorumMisses: 0, clientErrors: 0 };
// Answered requests to each cached ensemble (each one a cache lookup), and the rows sent to CACHED.
const looked: Record<string, number> = { [CACHED]: 0, [REPEATED]: 0 };
const cachedRows = new Set<number>();

const predict = (ensemble: string, instances: unknown) =>
  http('POST', `${stack.api}/v1/ensembles/${ensemble}/predictions`, { instances });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fanout-dashboard-e2e-'));
  manifestFile = manifestWithBrokenMember(dir);
  const wineFeatures = loadManifest(manifestFile).ensembles.get('wine')?.features.length ?? 13;
  wineRows = [Array.from({ length: wineFeatures }, (_, i) => 1 + i / 10)];
  stack = await startStackProcess(join(dir, 'data'), { FANOUT_MANIFEST: manifestFile });
  // A few seconds of traffic, so the charts have a shape: mostly healthy, some degraded, a few errors.
  const until = Date.now() + 9_000;
  for (let i = 0; Date.now() < until; i++) {
    const row = rows[i % rows.length] as number[];
    const second = i % 3 === 0 ? REPEATED : CACHED;
    const answers = await Promise.all([
      predict('breast-cancer', [row]),
      predict(second, second === REPEATED ? wineRows : [row]),
    ]);
    for (const a of answers) if (a.status === 200) sent.ok++;
    if (answers[1]?.status === 200) {
      looked[second] = (looked[second] ?? 0) + 1;
      if (second === CACHED) cachedRows.add(i % rows.length);
    }
    if (i % 10 === 0) {
      const trial = await predict(TRIAL, [row]);
      expect(trial.status).toBe(200);
      expect(trial.body.degraded).toBe(true);
      sent.degraded++;
    }
  }
  // The last few requests: a cache hit, a degraded answer, a quorum miss and a bad request, newest
  // first on the page.
  const hit = await predict(REPEATED, wineRows);
  expect(hit.body.cached).toBe(true);
  looked[REPEATED] = (looked[REPEATED] ?? 0) + 1;
  expect((await predict(TRIAL, [rows[1]])).body.degraded).toBe(true);
  sent.degraded++;
  expect((await predict(DOOMED, [rows[0]])).status).toBe(503);
  sent.quorumMisses++;
  expect((await predict('breast-cancer', [[1, 2, 3]])).status).toBe(400);
  sent.clientErrors++;
  // Enough rows compared for the drift rule (50 by default) in one request.
  const drift = await predict(DRIFT, rows.slice(0, DRIFT_ROWS));
  expect(drift.status).toBe(200);
  expect(drift.body.degraded).toBe(false);
  // A batch job through the CLI, as a user runs it: every row of the data set to CACHED, whose rows
  // sent above are answered from the cache.
  const features = loadManifest(manifestFile).ensembles.get(CACHED)?.features ?? [];
  const file = join(dir, 'rows.csv');
  writeFileSync(file, batchCsv(features));
  const cli = await run(['bin/fanout.js', 'batch', file, '--ensemble', CACHED, '--json'], {
    PORT: new URL(stack.api).port,
  });
  expect(cli.code).toBe(0);
}, 180_000);

afterAll(async () => {
  if (stack) await stack.stop();
  rmSync(dir, { recursive: true, force: true });
});

function run(args: string[], env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  return new Promise((done) => {
    const child = spawn(resolve(ROOT, 'node_modules/.bin/node'), args, {
      cwd: ROOT,
      env: { ...process.env, ...env },
    });
    let out = '';
    child.stdout.on('data', (c) => {
      out += c;
    });
    child.stderr.on('data', (c) => {
      out += c;
    });
    child.on('exit', (code) => done({ code, out }));
  });
}

/** Prometheus text → `name{labels} value` samples. */
function samples(text: string): { name: string; labels: Record<string, string>; value: number }[] {
  return text
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const m = /^([a-z_]+)(?:\{(.*)\})? (\S+)$/.exec(l);
      if (!m) throw new Error(`not a Prometheus sample line: ${l}`);
      const labels = Object.fromEntries(
        [...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1] as string, x[2] as string]),
      );
      return { name: m[1] as string, labels, value: Number(m[3]) };
    });
}

describe('GET /metrics after real traffic', () => {
  it('exposes non-zero latency histograms and outcome counters for every member of the manifest', async () => {
    const res = await fetch(`${stack.api}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const all = samples(await res.text());
    const manifest = loadManifest(manifestFile);
    for (const ensemble of ['breast-cancer', 'breast-cancer-stacked', TRIAL]) {
      for (const model of manifest.ensembles.get(ensemble)?.members ?? []) {
        const at = (name: string, extra: Record<string, string> = {}) =>
          all.find(
            (s) =>
              s.name === name &&
              s.labels.ensemble === ensemble &&
              s.labels.model === model &&
              Object.entries(extra).every(([k, v]) => s.labels[k] === v),
          )?.value ?? 0;
        const status = model === BROKEN ? 'failed' : 'ok';
        // Named in the failure message: which member of which ensemble had nothing.
        expect({ ensemble, model, status, calls: at('fanout_member_calls_total', { status }) > 0 }).toEqual({
          ensemble,
          model,
          status,
          calls: true,
        });
        // A broken model fails to load before any timing: only the others have latencies.
        if (model !== BROKEN) expect(at('fanout_member_latency_seconds_count')).toBeGreaterThan(0);
      }
    }
    const sum = (name: string, labels: Record<string, string>) =>
      all
        .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
        .reduce((a, s) => a + s.value, 0);
    expect(sum('fanout_request_latency_seconds_count', { ensemble: 'breast-cancer' })).toBeGreaterThan(0);
    expect(sum('fanout_degraded_answers_total', { ensemble: TRIAL })).toBe(sent.degraded);
    expect(sum('fanout_quorum_misses_total', { ensemble: DOOMED })).toBe(sent.quorumMisses);
    expect(sum('fanout_client_errors_total', { code: 'invalid_request' })).toBe(sent.clientErrors);
    expect(sum('fanout_batch_jobs_succeeded_total', { ensemble: CACHED })).toBe(1);
    expect(sum('fanout_batch_rows_ok_total', { ensemble: CACHED })).toBe(rows.length);
    // Every family is exposed under the stack's stage.
    expect(all.filter((s) => s.labels.stage !== undefined && s.labels.stage !== 'local')).toEqual([]);
  });

  it('counts result-cache hits and misses per request (sync) and per distinct row (batch)', async () => {
    const all = samples(await (await fetch(`${stack.api}/metrics`)).text());
    const value = (name: string, labels: Record<string, string>) =>
      all.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
        ?.value ?? 0;
    for (const ensemble of [CACHED, REPEATED]) {
      const sync = { ensemble, path: 'sync' };
      const lookups = value('fanout_cache_hits_total', sync) + value('fanout_cache_misses_total', sync);
      expect({ ensemble, lookups }).toEqual({ ensemble, lookups: looked[ensemble] });
      expect(value('fanout_cache_errors_total', sync)).toBe(0);
    }
    // The same row every time: one miss, then hits.
    expect(value('fanout_cache_misses_total', { ensemble: REPEATED, path: 'sync' })).toBe(1);
    // The batch found exactly the rows the synchronous requests had answered, and scored the rest.
    const batch = { ensemble: CACHED, path: 'batch' };
    expect(value('fanout_cache_hits_total', batch)).toBe(cachedRows.size);
    expect(value('fanout_cache_misses_total', batch)).toBe(rows.length - cachedRows.size);
    // Nothing is looked up for an ensemble without a cache.
    expect(
      all.filter((s) => s.name.startsWith('fanout_cache_') && s.labels.ensemble === 'breast-cancer'),
    ).toEqual([]);
  });
});

(missing ? describe.skip : describe)('GET /dashboard in headless Chromium', () => {
  let browser: Browser;
  let close: () => Promise<void>;
  let page: Page;

  beforeAll(async () => {
    ({ browser, close } = await launchBrowser());
    page = await browser.newPage();
    await page.setViewport({ width: 1400, height: 1000 });
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(String(err)));
    page.on('console', (msg) => {
      if (msg.type() === 'error') errors.push(msg.text());
    });
    await page.goto(`${stack.api}/dashboard`, { waitUntil: 'load' });
    await page.waitForSelector('body[data-ready="true"]', { timeout: 20_000 });
    // Past one refresh at least: what a person sees after a few seconds, not only the first draw.
    const first = await page.$eval('body', (b) => b.getAttribute('data-generated-at'));
    await page.waitForFunction(
      (at) => (globalThis as any).document.body.getAttribute('data-generated-at') !== at,
      { timeout: 20_000 },
      first,
    );
    // The whole page in the viewport, then two frames: a full-page screenshot of a shorter viewport
    // would resize the charts while it is taken (the scroll bar goes away) and catch them half drawn.
    const height = await page.evaluate(
      () => (globalThis as any).document.documentElement.scrollHeight as number,
    );
    await page.setViewport({ width: 1400, height });
    await page.evaluate(
      () =>
        new Promise((done) =>
          (globalThis as any).requestAnimationFrame(() => (globalThis as any).requestAnimationFrame(done)),
        ),
    );
    expect(errors).toEqual([]);
  }, 60_000);

  afterAll(async () => {
    await close?.();
  });

  it('shows every member of each busy ensemble side by side, with its latency and outcomes drawn', async () => {
    const manifest = loadManifest(manifestFile);
    for (const ensemble of ['breast-cancer', TRIAL]) {
      // Counted members, then shadow members (which run, and are watched, beside them).
      const spec = manifest.ensembles.get(ensemble);
      const members = [...(spec?.members ?? []), ...(spec?.shadow ?? [])];
      const card = await page.$(`#members article[data-ensemble="${ensemble}"]`);
      expect(card).not.toBeNull();
      const charts = await page.evaluate((name) => {
        const { document, Chart } = globalThis as any;
        const article = document.querySelector(`#members article[data-ensemble="${name}"]`);
        const get = (sel: string) => {
          const chart = Chart.getChart(article?.querySelector(sel));
          return {
            labels: chart.data.labels,
            series: Object.fromEntries(chart.data.datasets.map((d: any) => [d.label, d.data])),
          };
        };
        return { latency: get('.latency canvas'), outcomes: get('.outcomes canvas') };
      }, ensemble);
      expect(charts.latency.labels).toEqual([...members]);
      members.forEach((model, i) => {
        if (model === BROKEN) {
          expect(charts.outcomes.series.failed[i]).toBe(100);
        } else {
          expect(charts.latency.series.p50[i]).toBeGreaterThan(0);
          expect(charts.latency.series.p99[i]).toBeGreaterThanOrEqual(charts.latency.series.p50[i]);
          expect(charts.outcomes.series.ok[i]).toBe(100);
        }
      });
    }
  });

  it("shows how often each member's top label is the answer's, shadows marked, and the canary's comparison", async () => {
    const spec = loadManifest(manifestFile).ensembles.get('breast-cancer');
    const members = [...(spec?.members ?? []), ...(spec?.shadow ?? [])];
    const seen = await page.evaluate(() => {
      const { document, Chart } = globalThis as any;
      const article = document.querySelector('#members article[data-ensemble="breast-cancer"]');
      const chart = Chart.getChart(article?.querySelector('.agreement canvas'));
      const card = document.querySelector('#ensembles article[data-ensemble="breast-cancer"]');
      return {
        labels: chart.data.labels,
        rates: chart.data.datasets[0].data,
        shadows: article?.dataset.shadows,
        stats: card?.querySelector('.stats')?.textContent,
        subtitle: card?.querySelector('.subtitle')?.textContent,
        overTime: Chart.getChart(article?.querySelector('.agreement-time canvas')).data.datasets.map(
          (d: any) => ({ label: d.label, points: d.data.filter((v: number | null) => v !== null).length }),
        ),
      };
    });
    expect(seen.labels).toEqual(members);
    // Over time: a line per member and shadow, then the canary's comparison, each with points.
    expect(seen.overTime.map((l: { label: string }) => l.label)).toEqual([
      ...(spec?.members ?? []),
      ...(spec?.shadow ?? []).map((m) => `${m} (shadow)`),
      `canary ${spec?.canary?.ensemble}`,
    ]);
    for (const line of seen.overTime) expect(line.points).toBeGreaterThan(0);
    expect(seen.shadows).toBe((spec?.shadow ?? []).join(','));
    // Every member and shadow answered rows of the data set: most of them agree with the answer.
    for (const rate of seen.rates) {
      expect(rate).toBeGreaterThan(50);
      expect(rate).toBeLessThanOrEqual(100);
    }
    expect(seen.subtitle).toContain(`canary ${spec?.canary?.ensemble} ${spec?.canary?.percent}%`);
    expect(seen.stats).toContain(`agrees with ${spec?.canary?.ensemble}`);
  });

  it('marks the member the drift alarm would page for, in its bar and in words, and draws each agreement over time', async () => {
    const seen = await page.evaluate(
      (names) => {
        const { document, Chart } = globalThis as any;
        const card = (name: string) => document.querySelector(`#members article[data-ensemble="${name}"]`);
        const drift = card(names.drift);
        const bars = Chart.getChart(drift?.querySelector('.agreement canvas'));
        const time = Chart.getChart(drift?.querySelector('.agreement-time canvas'));
        const note = drift?.querySelector('.drift-note');
        return {
          drifting: drift?.dataset.drifting,
          healthy: card('breast-cancer')?.dataset.drifting,
          healthyNoteHidden: card('breast-cancer')?.querySelector('.drift-note')?.hidden,
          labels: bars.data.labels,
          colors: bars.data.datasets[0].backgroundColor,
          rates: bars.data.datasets[0].data,
          note: note?.hidden ? '' : note?.textContent,
          title: drift?.querySelector('.agreement-time-title')?.textContent,
          lines: time.data.datasets.map((d: any) => ({
            label: d.label,
            last: [...d.data].reverse().find((v: number | null) => v !== null) ?? null,
          })),
          threshold: time.options.plugins.thresholdLine.value,
        };
      },
      { drift: DRIFT },
    );
    const members = loadManifest(manifestFile).ensembles.get(DRIFT)?.members ?? [];
    expect(seen.drifting).toBe(DRIFTING);
    expect(seen.healthy).toBe('');
    expect(seen.healthyNoteHidden).toBe(true);
    const at = (seen.labels as string[]).indexOf(DRIFTING);
    expect(seen.rates[at]).toBeLessThan(90);
    expect(seen.colors[at]).toBe('#d93a3a');
    expect(seen.note).toContain(`${DRIFTING} agreed with the answer on`);
    expect(seen.note).toContain(`of ${DRIFT_ROWS} rows`);
    expect(seen.note).toContain("under the drift alarm's 90%");
    expect(seen.title).toContain('judged on at least 50 rows');
    expect(seen.threshold).toBe(90);
    // One line per member, each ending where its share stood over the last minute.
    expect(seen.lines.map((l: { label: string }) => l.label)).toEqual(members);
    for (const line of seen.lines as { label: string; last: number | null }[]) {
      if (line.label === DRIFTING) expect(line.last).toBeLessThan(90);
      else expect(line.last).toBeGreaterThan(90);
    }
  });

  it("shows each busy ensemble's traffic and latency percentiles, and the idle ones by name", async () => {
    const card = await page.$eval(
      '#ensembles article[data-ensemble="breast-cancer"] .stats',
      (n) => n.textContent ?? '',
    );
    expect(card).toMatch(/req\/s \d+(\.\d+)?/);
    expect(card).toMatch(/p50 \d+(\.\d+)? ms/);
    expect(card).toMatch(/p99 \d+(\.\d+)? ms/);
    const drawn = await page.evaluate(() => {
      const { document, Chart } = globalThis as any;
      const canvas = document.querySelector('#ensembles article[data-ensemble="breast-cancer"] canvas');
      const chart = Chart.getChart(canvas);
      return Object.fromEntries(chart.data.datasets.map((d: any) => [d.label, d.data]));
    });
    expect(drawn['requests/s'].some((v: number) => v > 0)).toBe(true);
    expect(drawn.p99.some((v: number | null) => v !== null && v > 0)).toBe(true);
    expect(card).not.toContain('cache');
    const kpis = await page.$eval('#kpis', (n) => n.textContent ?? '');
    expect(kpis).toMatch(/Quorum misses\s*1/);
    expect(await page.$eval('#idle', (n) => n.textContent ?? '')).toContain('wine-stacked');
  });

  it("shows an ensemble's result cache: its TTL, hit rates, and the hits in its traffic chart", async () => {
    const repeated = await page.$eval(`#ensembles article[data-ensemble="${REPEATED}"]`, (n) => ({
      subtitle: n.querySelector('.subtitle')?.textContent ?? '',
      stats: n.querySelector('.stats')?.textContent ?? '',
    }));
    expect(repeated.subtitle).toContain('cache 1 h');
    const rate = Number(/cache hits (\d+(?:\.\d+)?)%/.exec(repeated.stats)?.[1]);
    expect(rate).toBeGreaterThan(50);
    const drawn = await page.evaluate((name) => {
      const { document, Chart } = globalThis as any;
      const chart = Chart.getChart(
        document.querySelector(`#ensembles article[data-ensemble="${name}"] canvas`),
      );
      return Object.fromEntries(chart.data.datasets.map((d: any) => [d.label, d.data]));
    }, REPEATED);
    expect(drawn['cache hits/s'].some((v: number) => v > 0)).toBe(true);
    const cached = await page.$eval(
      `#ensembles article[data-ensemble="${CACHED}"] .stats`,
      (n) => n.textContent ?? '',
    );
    expect(cached).toMatch(/cache hits \d+(\.\d+)?%/);
    expect(cached).toMatch(/batch rows cached \d+(\.\d+)?%/);
  });

  it('lists recent predictions with the degraded ones marked and the failed member named', async () => {
    const degraded = await page.$$eval('#predictions li[data-degraded="true"]', (items) =>
      items.map((li) => li.textContent ?? ''),
    );
    expect(degraded.length).toBeGreaterThan(0);
    expect(degraded[0]).toContain('DEGRADED');
    expect(degraded[0]).toContain(`${BROKEN} failed`);
    const failed = await page.$$eval('#predictions li.failed', (items) =>
      items.map((li) => li.textContent ?? ''),
    );
    expect(failed.some((t) => t.includes('503') && t.includes(DOOMED))).toBe(true);
    const cached = await page.$$eval('#predictions li[data-cached="true"]', (items) =>
      items.map((li) => li.textContent ?? ''),
    );
    expect(cached[0]).toContain('CACHED');
    expect(cached[0]).toContain(REPEATED);
    expect(cached[0]).toContain('answered from the cache');
  });

  it('follows the batch job to the end, with its rows and speed', async () => {
    const job = await page.$eval('#jobs li[data-status]', (li) => ({
      status: li.getAttribute('data-status'),
      text: li.textContent ?? '',
    }));
    expect(job.status).toBe('SUCCEEDED');
    expect(job.text).toContain(`${rows.length} of ${rows.length} rows`);
    expect(job.text).toMatch(/\d+ rows\/s/);
    expect(job.text).toContain(`${cachedRows.size} from the cache`);
  });

  it('draws every chart inside its card, with something on it', async () => {
    const charts = await page.evaluate(() => {
      const { document } = globalThis as any;
      return [...document.querySelectorAll('canvas')].map((canvas: any) => {
        const box = canvas.getBoundingClientRect();
        const card = canvas.closest('.card').getBoundingClientRect();
        const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
        let painted = 0;
        for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) painted++;
        return {
          chart: canvas.getAttribute('aria-label'),
          inside:
            box.width > 0 &&
            box.height > 0 &&
            box.left >= card.left - 1 &&
            box.right <= card.right + 1 &&
            box.top >= card.top - 1 &&
            box.bottom <= card.bottom + 1,
          painted: painted > 500,
        };
      });
    });
    expect(charts.length).toBeGreaterThan(6);
    for (const c of charts) expect(c).toEqual({ chart: c.chart, inside: true, painted: true });
  });

  it('saves a full-page screenshot of the dashboard', async () => {
    mkdirSync(dirname(SCREENSHOT), { recursive: true });
    // The page may have grown since the viewport was set (a refresh can add a card): fit it again
    // and let the charts settle, so the full-page capture does not resize them half drawn.
    const height = await page.evaluate(
      () => (globalThis as any).document.documentElement.scrollHeight as number,
    );
    await page.setViewport({ width: 1400, height });
    await page.evaluate(
      () =>
        new Promise((done) =>
          (globalThis as any).requestAnimationFrame(() => (globalThis as any).requestAnimationFrame(done)),
        ),
    );
    const png = await page.screenshot({ fullPage: true, type: 'png' });
    writeFileSync(SCREENSHOT, png);
    expect(png.length).toBeGreaterThan(50_000);
  });
});
