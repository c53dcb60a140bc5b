import { NAMESPACE } from '../../functions/adapters/metrics.js';
import {
  type DashboardData,
  DashboardModel,
  type DashboardModelOptions,
  type ServedEnsemble,
} from './dashboard-model.js';
import { parseEmf } from './emf.js';
import { PrometheusExporter } from './prometheus.js';

/**
 * The local stack's metrics: the CloudWatch EMF lines the handlers write (the same lines CloudWatch
 * turns into metrics on AWS) go in through {@link MetricsCollector.ingest}, one line at a time,
 * whichever way they were written: in-process handlers through the stdout hook
 * (`stdout-hook.ts`), handlers in worker threads or child processes through their output pipes.
 * Out come the Prometheus exposition (`GET /metrics`) and the dashboard's data (`GET /dashboard`).
 */
export class MetricsCollector {
  readonly prometheus: PrometheusExporter;
  readonly dashboard: DashboardModel;
  /** EMF lines taken, and lines that looked like EMF but were not valid. */
  readonly counts = { lines: 0, rejected: 0 };

  constructor(options: DashboardModelOptions & { namespace?: string } = {}) {
    this.prometheus = new PrometheusExporter(options.namespace ?? NAMESPACE);
    this.dashboard = new DashboardModel(options);
    this.namespace = options.namespace ?? NAMESPACE;
  }

  private readonly namespace: string;

  /**
   * Takes one line of a handler's output. Answers true when it was an EMF line of this service's
   * namespace (then it is counted and need not be printed), false for anything else (print it).
   */
  ingest(line: string): boolean {
    const text = line.trimEnd();
    if (!text.startsWith('{"_aws"')) return false;
    const records = parseEmf(text);
    if (!records) {
      this.counts.rejected++;
      return false;
    }
    const ours = records.filter((r) => r.namespace === this.namespace);
    if (ours.length === 0) return false;
    this.counts.lines++;
    for (const r of ours) {
      this.prometheus.add(r);
      this.dashboard.add(r);
    }
    return true;
  }

  /** Lists the served ensembles so the dashboard shows them and their members before any traffic. */
  serve(ensembles: readonly ServedEnsemble[]): void {
    this.dashboard.serve(ensembles);
  }

  /** The Prometheus text exposition. */
  metricsText(): Promise<string> {
    return this.prometheus.text();
  }

  /** The dashboard's data. */
  dashboardData(): DashboardData {
    return this.dashboard.data();
  }
}
