import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { availableParallelism } from 'node:os';
import { PassThrough, type Readable } from 'node:stream';
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { ExecutionError, StateMachine, type StateMachineDefinition } from 'aws-local-stepfunctions';
import { readLines } from '../functions/core/lines.js';
import {
  type AslDefinition,
  type AslState,
  bindDefinition,
  type StateBinder,
  UnsupportedAslError,
} from './asl-bindings.js';
import { LOCAL_ACCOUNT } from './serverless-config.js';

/** What the emulation needs: S3 for the reader and writer, and the binders for the children. */
export interface DistributedMapOptions {
  s3: () => S3Client;
  /** The binders of the whole engine (children's Tasks are bound like the parent's). */
  binders: () => readonly StateBinder[];
  region: string;
  /**
   * Children running at once here, below the state's MaxConcurrency (one machine, not a fleet):
   * their Lambda tasks spread over the function instances of the worker pool. Default
   * {@link defaultMapConcurrency}.
   */
  localConcurrency?: number;
}

/**
 * Two children per core: while one child's members run in the runner instances, another's
 * StoreBatch runs in its own instance and the emulators serve a third, so every core has work.
 */
export function defaultMapConcurrency(): number {
  return 2 * availableParallelism();
}

/**
 * Effectively no limit: a map run ends when its children do. The interpreter turns this into a
 * setTimeout, whose longest delay is 2^31-1 ms (about 24.8 days); more would fire at once.
 */
const MAP_RUN_TIMEOUT_SECONDS = 2_147_483;

/** Fields of a Map state that the replacement Task keeps: its place in the flow and its I/O. */
const KEPT = [
  'Comment',
  'InputPath',
  'ResultPath',
  'ResultSelector',
  'OutputPath',
  'Retry',
  'Catch',
  'Next',
  'End',
];

/**
 * Whether a state is a Distributed Map (its children run as executions of their own) rather than
 * an inline Map: its processor's mode says DISTRIBUTED, or it reads its items with an ItemReader.
 */
export function isDistributedMap(state: Record<string, unknown>): boolean {
  if (state.Type !== 'Map') return false;
  const processor = (state.ItemProcessor ?? state.Iterator) as
    | { ProcessorConfig?: { Mode?: string } }
    | undefined;
  return processor?.ProcessorConfig?.Mode === 'DISTRIBUTED' || 'ItemReader' in state;
}

/**
 * Emulates a Distributed Map, which aws-local-stepfunctions does not run: the state is replaced by
 * a Task whose local handler reads the items (ItemReader: JSON Lines from S3, or ItemsPath),
 * groups them (ItemBatcher: MaxItemsPerBatch, MaxInputBytesPerBatch, BatchInput), runs the
 * ItemProcessor as one child execution per batch through the interpreter (bounded concurrency,
 * items streamed: memory does not grow with the file), applies ToleratedFailurePercentage/Count,
 * and writes results as ResultWriter does on AWS (manifest.json, SUCCEEDED_0.json, FAILED_0.json).
 * The replacement Task's Parameters let the interpreter resolve the reader's, batcher's and writer's
 * paths and intrinsics exactly as it would for any state.
 */
export function distributedMapBinder(options: DistributedMapOptions): StateBinder {
  return {
    bind(state, name, where) {
      if (!isDistributedMap(state)) return undefined;
      const processor = (state.ItemProcessor ?? state.Iterator) as
        | (AslDefinition & { ProcessorConfig?: { Mode?: string } })
        | undefined;
      if (!processor) return undefined;
      if ('ItemSelector' in state || 'Parameters' in state) {
        throw new UnsupportedAslError(`${where}: ItemSelector on a Distributed Map is not emulated locally`);
      }
      const reader = state.ItemReader as
        | { Resource?: string; ReaderConfig?: { InputType?: string }; Parameters?: unknown }
        | undefined;
      if (
        reader &&
        (reader.Resource !== 'arn:aws:states:::s3:getObject' || reader.ReaderConfig?.InputType !== 'JSONL')
      ) {
        throw new UnsupportedAslError(
          `${where}.ItemReader: only JSONL objects from s3:getObject are emulated locally`,
        );
      }
      const { ProcessorConfig: _config, ...childDefinition } = processor;
      const bound = bindDefinition(childDefinition as AslDefinition, options.binders());
      const child = new StateMachine(bound.definition as unknown as StateMachineDefinition);
      const replacement: AslState = { Type: 'Task', Resource: `arn:aws:states:::local:distributedMap` };
      for (const key of KEPT) if (key in state) replacement[key] = state[key];
      // A Map state has no timeout of its own on AWS; the interpreter gives a Task 60 s by default,
      // which would cut a long map run short.
      replacement.TimeoutSeconds = MAP_RUN_TIMEOUT_SECONDS;
      replacement.Parameters = {
        'input.$': '$',
        ...(reader
          ? { reader: reader.Parameters }
          : { 'items.$': (state.ItemsPath as string | undefined) ?? '$' }),
        ...(state.ItemBatcher ? { batcher: state.ItemBatcher } : {}),
        ...(state.ResultWriter
          ? { writer: (state.ResultWriter as { Parameters?: unknown }).Parameters }
          : {}),
      };
      const limits = {
        maxConcurrency: Number(state.MaxConcurrency ?? 0) || 1000,
        toleratedPercentage: optionalNumber(state.ToleratedFailurePercentage),
        toleratedCount: optionalNumber(state.ToleratedFailureCount),
      };
      return {
        state: replacement,
        handler: (input) =>
          runMap(input as MapInput, { name, child, handlers: bound.handlers, limits, options }),
      };
    },
  };
}

interface MapInput {
  input: unknown;
  items?: unknown;
  reader?: { Bucket: string; Key: string };
  batcher?: { MaxItemsPerBatch?: number; MaxInputBytesPerBatch?: number; BatchInput?: unknown };
  writer?: { Bucket: string; Prefix?: string };
}

interface RunContext {
  name: string;
  child: StateMachine;
  handlers: Record<string, (input: unknown) => Promise<unknown>>;
  limits: { maxConcurrency: number; toleratedPercentage?: number; toleratedCount?: number };
  options: DistributedMapOptions;
}

/** A finished child as ResultWriter records it. */
interface ChildRecord {
  ExecutionArn: string;
  Input: string;
  Name: string;
  Output?: string;
  Status: 'SUCCEEDED' | 'FAILED';
  Error?: string;
  Cause?: string;
  StartDate: string;
  StopDate: string;
}

async function runMap(input: MapInput, ctx: RunContext): Promise<unknown> {
  const mapRunId = randomUUID();
  const mapRunArn = `arn:aws:states:${ctx.options.region}:${LOCAL_ACCOUNT}:mapRun:${ctx.name}/${mapRunId}`;
  const writer = input.writer ? openWriter(ctx.options.s3(), input.writer, mapRunId, mapRunArn) : undefined;
  const outputs: unknown[] = [];
  let total = 0;
  let failed = 0;
  const limit = Math.max(
    1,
    Math.min(ctx.limits.maxConcurrency, ctx.options.localConcurrency ?? defaultMapConcurrency()),
  );
  const running = new Set<Promise<void>>();

  const runChild = async (index: number, childInput: unknown) => {
    const name = `${mapRunId}:${index}`;
    const started = new Date().toISOString();
    const record: ChildRecord = {
      ExecutionArn: `arn:aws:states:${ctx.options.region}:${LOCAL_ACCOUNT}:express:${ctx.name}/${mapRunId}:${index}`,
      Input: JSON.stringify(childInput),
      Name: name,
      Status: 'SUCCEEDED',
      StartDate: started,
      StopDate: started,
    };
    try {
      const out = await ctx.child.run(childInput as never, {
        overrides: { taskResourceLocalHandlers: ctx.handlers as never },
      }).result;
      record.Output = JSON.stringify(out ?? null);
      if (!writer) outputs[index] = out;
    } catch (err) {
      const cause = err instanceof ExecutionError && err.cause instanceof Error ? err.cause : (err as Error);
      record.Status = 'FAILED';
      record.Error = cause?.name ?? 'States.Runtime';
      record.Cause = cause?.message ?? String(err);
      failed++;
      if (!writer) outputs[index] = null;
    }
    record.StopDate = new Date().toISOString();
    await writer?.add(record);
  };

  const schedule = async (childInput: unknown) => {
    const p = runChild(total++, childInput).finally(() => running.delete(p));
    running.add(p);
    if (running.size >= limit) await Promise.race(running);
  };

  try {
    const batcher = input.batcher;
    let batch: unknown[] = [];
    let batchBytes = 0;
    const flush = async () => {
      if (batch.length === 0) return;
      const items = batch;
      batch = [];
      batchBytes = 0;
      await schedule(
        batcher?.BatchInput === undefined
          ? { Items: items }
          : { BatchInput: batcher.BatchInput, Items: items },
      );
    };
    for await (const item of itemsOf(input, ctx.options.s3)) {
      if (!batcher) {
        await schedule(item);
        continue;
      }
      const size = Buffer.byteLength(JSON.stringify(item)) + 1;
      const maxItems = batcher.MaxItemsPerBatch ?? Number.POSITIVE_INFINITY;
      const maxBytes = batcher.MaxInputBytesPerBatch ?? 262_144;
      if (batch.length > 0 && (batch.length >= maxItems || batchBytes + size > maxBytes)) await flush();
      batch.push(item);
      batchBytes += size;
    }
    await flush();
    await Promise.all(running);
  } catch (err) {
    await Promise.allSettled(running);
    await writer?.close(total, failed).catch(() => undefined);
    throw err;
  }
  const details = await writer?.close(total, failed);
  // AWS: with no threshold any failure fails the run; with one or both, exceeding either does.
  const { toleratedCount: count, toleratedPercentage: pct } = ctx.limits;
  const tooMany =
    count === undefined && pct === undefined
      ? failed > 0
      : (count !== undefined && failed > count) ||
        (pct !== undefined && total > 0 && (failed / total) * 100 > pct);
  if (tooMany) {
    const err = new Error(
      `The specified tolerated failure threshold was exceeded: ${failed} of ${total} child executions failed`,
    );
    err.name = 'States.ExceedToleratedFailureThreshold';
    throw err;
  }
  return details ? { MapRunArn: mapRunArn, ResultWriterDetails: details } : outputs;
}

/** Items from an ItemReader (JSON Lines streamed from S3) or from the input (ItemsPath). */
async function* itemsOf(input: MapInput, s3: () => S3Client): AsyncGenerator<unknown> {
  if (!input.reader) {
    if (!Array.isArray(input.items)) throw statesError('States.Runtime', 'ItemsPath did not select an array');
    yield* input.items;
    return;
  }
  const { Bucket, Key } = input.reader;
  let body: Readable;
  try {
    body = (await s3().send(new GetObjectCommand({ Bucket, Key }))).Body as Readable;
  } catch (err) {
    throw statesError(
      'States.ItemReaderFailed',
      `cannot read s3://${Bucket}/${Key}: ${(err as Error).message}`,
    );
  }
  for await (const { line, text } of readLines(body)) {
    if (text.trim() === '') continue;
    try {
      yield JSON.parse(text);
    } catch (err) {
      throw statesError(
        'States.ItemReaderFailed',
        `s3://${Bucket}/${Key} line ${line}: ${(err as Error).message}`,
      );
    }
  }
}

/** Streams child records into SUCCEEDED_0.json / FAILED_0.json and writes manifest.json at the end. */
function openWriter(
  s3: S3Client,
  target: { Bucket: string; Prefix?: string },
  mapRunId: string,
  mapRunArn: string,
) {
  const prefix = `${(target.Prefix ?? '').replace(/\/$/, '')}/${mapRunId}`;
  const open = (status: string) => {
    const stream = new PassThrough();
    const key = `${prefix}/${status}_0.json`;
    const done = new Upload({
      client: s3,
      params: { Bucket: target.Bucket, Key: key, Body: stream, ContentType: 'application/json' },
    }).done();
    done.catch(() => undefined);
    let first = true;
    stream.write('[');
    return {
      key,
      count: 0,
      /** Waits when the upload lags, so a slow writer bounds memory instead of buffering. */
      async write(record: ChildRecord) {
        this.count++;
        const ok = stream.write(`${first ? '' : ','}${JSON.stringify(record)}`);
        first = false;
        if (!ok) await once(stream, 'drain');
      },
      async end() {
        stream.end(']');
        await done;
      },
    };
  };
  const succeeded = open('SUCCEEDED');
  const failed = open('FAILED');
  return {
    add: (record: ChildRecord) => (record.Status === 'SUCCEEDED' ? succeeded : failed).write(record),
    async close(total: number, failures: number) {
      await Promise.all([succeeded.end(), failed.end()]);
      const manifestKey = `${prefix}/manifest.json`;
      const manifest = {
        DestinationBucket: target.Bucket,
        MapRunArn: mapRunArn,
        ResultFiles: {
          FAILED: [{ Key: failed.key, Size: failures }],
          PENDING: [],
          SUCCEEDED: [{ Key: succeeded.key, Size: total - failures }],
        },
      };
      await s3.send(
        new PutObjectCommand({
          Bucket: target.Bucket,
          Key: manifestKey,
          Body: JSON.stringify(manifest),
          ContentType: 'application/json',
        }),
      );
      return { Bucket: target.Bucket, Key: manifestKey };
    },
  };
}

function statesError(name: string, message: string): Error {
  const err = new Error(message);
  err.name = name;
  return err;
}

function optionalNumber(value: unknown): number | undefined {
  return value === undefined ? undefined : Number(value);
}
