import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LocalPage } from '../http-api.js';
import type { MetricsCollector } from './collector.js';

const DASHBOARD_DIR = resolve(fileURLToPath(new URL('.', import.meta.url)), '../dashboard');

/** Chart.js's browser build, served by the stack itself (the machine may be offline: no CDN). */
function chartJsFile(): string {
  // chart.js exports no subpath for its UMD build; it sits next to the package's main file.
  return join(dirname(createRequire(import.meta.url).resolve('chart.js')), 'chart.umd.min.js');
}

const STATIC: Record<string, { file: () => string; contentType: string }> = {
  '/dashboard': { file: () => join(DASHBOARD_DIR, 'index.html'), contentType: 'text/html; charset=utf-8' },
  '/dashboard/': { file: () => join(DASHBOARD_DIR, 'index.html'), contentType: 'text/html; charset=utf-8' },
  '/dashboard/dashboard.js': {
    file: () => join(DASHBOARD_DIR, 'dashboard.js'),
    contentType: 'text/javascript; charset=utf-8',
  },
  '/dashboard/dashboard.css': {
    file: () => join(DASHBOARD_DIR, 'dashboard.css'),
    contentType: 'text/css; charset=utf-8',
  },
  '/dashboard/chart.umd.min.js': { file: chartJsFile, contentType: 'text/javascript; charset=utf-8' },
};

/**
 * The local stack's own pages on the API port: `GET /metrics` (Prometheus text exposition of the
 * handlers' EMF metrics), `GET /dashboard` (a live page) with its script, style and chart library,
 * and `GET /dashboard/data` (what the page polls). Undefined for every other path.
 */
export function observabilityPages(
  collector: MetricsCollector,
): (path: string) => Promise<LocalPage | undefined> {
  const cache = new Map<string, Buffer>();
  return async (path) => {
    if (path === '/metrics') {
      return { contentType: collector.prometheus.contentType, body: await collector.metricsText() };
    }
    if (path === '/dashboard/data') {
      return {
        contentType: 'application/json',
        body: JSON.stringify(collector.dashboardData()),
        headers: { 'cache-control': 'no-store' },
      };
    }
    const file = STATIC[path];
    if (!file) return undefined;
    let body = cache.get(path);
    if (!body) {
      body = await readFile(file.file());
      cache.set(path, body);
    }
    return { contentType: file.contentType, body, headers: { 'cache-control': 'no-cache' } };
  };
}
