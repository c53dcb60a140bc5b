import { Agent, request } from 'node:http';

/** One request's outcome: wall time at the client (ms), status and body. */
export interface Answer {
  ms: number;
  status: number;
  body: string;
}

/**
 * A keep-alive HTTP client for one-row predictions: what a service calling the API would hold.
 * Node's http module rather than fetch, whose extra layers cost the client (not the server) time.
 */
export class PredictClient {
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 64 });
  private readonly url: URL;

  constructor(api: string) {
    this.url = new URL(api);
  }

  /** POSTs `{"instances": [row]}` to `/v1/ensembles/<ensemble>/predictions`. */
  predict(ensemble: string, row: readonly number[]): Promise<Answer> {
    return this.post(`/v1/ensembles/${encodeURIComponent(ensemble)}/predictions`, { instances: [row] });
  }

  post(path: string, payload: unknown): Promise<Answer> {
    const body = JSON.stringify(payload);
    return new Promise((resolveAnswer, reject) => {
      const started = performance.now();
      const req = request(
        {
          host: this.url.hostname,
          port: this.url.port,
          path,
          method: 'POST',
          agent: this.agent,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
          timeout: 60_000,
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => {
            text += c;
          });
          res.on('end', () =>
            resolveAnswer({ ms: performance.now() - started, status: res.statusCode ?? 0, body: text }),
          );
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`POST ${path}: no answer within 60 s`)));
      req.on('error', reject);
      req.end(body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

/**
 * Sends `count` one-row requests one after another (concurrency 1) after `warmup` untimed ones,
 * cycling through `rows`; answers the client-side latencies. Any answer but 200 fails the run.
 */
export async function sequentialLatencies(
  client: PredictClient,
  ensemble: string,
  rows: readonly (readonly number[])[],
  count: number,
  warmup = 0,
  /** Sees every timed answer (e.g. to read the members' own latencies from the body). */
  onAnswer?: (answer: Answer) => void,
): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < warmup + count; i++) {
    const answer = await client.predict(ensemble, rows[i % rows.length] as number[]);
    if (answer.status !== 200) {
      throw new Error(`POST /v1/ensembles/${ensemble}/predictions answered ${answer.status}: ${answer.body}`);
    }
    if (i >= warmup) {
      out.push(answer.ms);
      onAnswer?.(answer);
    }
  }
  return out;
}
