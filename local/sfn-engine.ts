import { randomUUID } from 'node:crypto';
import {
  ExecutionAbortedError,
  ExecutionError,
  ExecutionTimeoutError,
  type RunOptions,
  StateMachine,
  type StateMachineDefinition,
  type StateMachineOptions,
} from 'aws-local-stepfunctions';
import { type AslDefinition, bindDefinition, type StateBinder, UnsupportedAslError } from './asl-bindings.js';
import { speedUpScalarPaths } from './jsonpath-speedup.js';
import { LOCAL_ACCOUNT } from './serverless-config.js';
import { dropUnreadEventLogs } from './sfn-event-logs.js';
import { provideStateContext } from './state-context.js';

/** Step Functions' payload limit: execution input, output and every state's data (bytes, UTF-8). */
export const MAX_PAYLOAD_BYTES = 262_144;

/** An API error with the Step Functions error code as `type` (the SDK's exception name). */
export class SfnApiError extends Error {
  constructor(
    readonly type: string,
    message: string,
  ) {
    super(message);
    this.name = type;
  }
}

/** A state machine to serve. */
export interface MachineSpec {
  name: string;
  arn: string;
  type: 'STANDARD' | 'EXPRESS';
  definition: Record<string, unknown>;
}

export type ExecutionStatus = 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'TIMED_OUT' | 'ABORTED';

/** An execution as DescribeExecution answers it (dates in epoch seconds, as the wire carries them). */
export interface ExecutionDescription {
  executionArn: string;
  stateMachineArn: string;
  name: string;
  status: ExecutionStatus;
  startDate: number;
  stopDate?: number;
  input: string;
  output?: string;
  error?: string;
  cause?: string;
}

/** Options for {@link StepFunctionsEngine}. */
export interface EngineOptions {
  region: string;
  binders: readonly StateBinder[];
  /** Express executions kept for Describe/List (sync ones are at-most-once and short-lived). */
  maxExpressExecutions?: number;
  maxStandardExecutions?: number;
  /** asl-validator options; the defaults check ARNs and paths, and the real definitions pass. */
  validation?: StateMachineOptions['validationOptions'];
}

type LocalHandlers = NonNullable<NonNullable<RunOptions['overrides']>['taskResourceLocalHandlers']>;

interface Machine {
  spec: MachineSpec;
  creationDate: number;
  definitionText: string;
  /** Why it cannot run here (a feature not emulated yet); it is still listed and described. */
  unsupported?: string;
  stateMachine?: StateMachine;
  runOptions: RunOptions;
}

interface Execution extends ExecutionDescription {
  done: Promise<void>;
  abort?: () => void;
}

const NAME_RULE = /^[^\s<>{}[\]?*"#%\\^|~`$&,;:/\p{Cc}]{1,80}$/u;

/**
 * The Step Functions API in-process, over aws-local-stepfunctions: state machines are compiled
 * once (validated, Task states bound to local handlers), each execution reuses them. The HTTP
 * wire protocol lives in sfn-server.ts.
 */
export class StepFunctionsEngine {
  private readonly machines = new Map<string, Machine>();
  private readonly express = new Map<string, Execution>();
  private readonly standard = new Map<string, Execution>();

  constructor(private readonly options: EngineOptions) {
    speedUpScalarPaths();
    provideStateContext();
    dropUnreadEventLogs();
  }

  /**
   * Adds a state machine. Throws if the definition is invalid (asl-validator's message) or binds to
   * nothing; a definition using a feature not emulated yet is registered but refuses executions.
   */
  register(spec: MachineSpec): void {
    const machine: Machine = {
      spec,
      creationDate: Date.now() / 1000,
      definitionText: JSON.stringify(spec.definition),
      runOptions: {},
    };
    try {
      const bound = bindDefinition(spec.definition as unknown as AslDefinition, this.options.binders);
      machine.stateMachine = new StateMachine(bound.definition as unknown as StateMachineDefinition, {
        validationOptions: this.options.validation,
      });
      // One overrides object per machine: nothing is resolved per execution.
      machine.runOptions = { overrides: { taskResourceLocalHandlers: bound.handlers as LocalHandlers } };
    } catch (err) {
      if (!(err instanceof UnsupportedAslError)) {
        throw new Error(`state machine ${spec.name}: ${(err as Error).message}`);
      }
      machine.unsupported = err.message;
    }
    this.machines.set(spec.arn, machine);
  }

  /** Machines that are registered but cannot run, with the reason. */
  unsupported(): { name: string; reason: string }[] {
    return [...this.machines.values()]
      .filter((m) => m.unsupported)
      .map((m) => ({ name: m.spec.name, reason: m.unsupported as string }));
  }

  listStateMachines(): { stateMachines: Record<string, unknown>[] } {
    return {
      stateMachines: [...this.machines.values()].map((m) => ({
        stateMachineArn: m.spec.arn,
        name: m.spec.name,
        type: m.spec.type,
        creationDate: m.creationDate,
      })),
    };
  }

  describeStateMachine(arn: unknown): Record<string, unknown> {
    const m = this.machine(arn);
    return {
      stateMachineArn: m.spec.arn,
      name: m.spec.name,
      status: 'ACTIVE',
      definition: m.definitionText,
      roleArn: `arn:aws:iam::${LOCAL_ACCOUNT}:role/${m.spec.name}-local`,
      type: m.spec.type,
      creationDate: m.creationDate,
    };
  }

  /** Runs an Express execution to completion; like AWS, a failed execution is an answer, not an error. */
  async startSyncExecution(request: Record<string, unknown>): Promise<ExecutionDescription> {
    const m = this.runnable(request.stateMachineArn);
    if (m.spec.type !== 'EXPRESS') {
      throw new SfnApiError(
        'StateMachineTypeNotSupported',
        'This operation is not supported by this type of state machine',
      );
    }
    const { name, input, value } = this.request(request);
    const execution = this.begin(
      m,
      `arn:aws:states:${this.options.region}:${LOCAL_ACCOUNT}:express:${m.spec.name}:${name}:${randomUUID()}`,
      name,
      input,
      value,
    );
    this.keep(this.express, execution, this.options.maxExpressExecutions ?? 1000);
    await execution.done;
    return describe(execution);
  }

  /**
   * Starts an execution in the background. Names are unique per Standard state machine, with AWS's
   * rule: the same name and input while the first is running returns it; otherwise
   * ExecutionAlreadyExists.
   */
  startExecution(request: Record<string, unknown>): { executionArn: string; startDate: number } {
    const m = this.runnable(request.stateMachineArn);
    const { name, input, value } = this.request(request);
    const isExpress = m.spec.type === 'EXPRESS';
    const arn = isExpress
      ? `arn:aws:states:${this.options.region}:${LOCAL_ACCOUNT}:express:${m.spec.name}:${name}:${randomUUID()}`
      : `arn:aws:states:${this.options.region}:${LOCAL_ACCOUNT}:execution:${m.spec.name}:${name}`;
    const existing = this.standard.get(arn);
    if (existing) {
      if (existing.status === 'RUNNING' && existing.input === input) {
        return { executionArn: existing.executionArn, startDate: existing.startDate };
      }
      throw new SfnApiError('ExecutionAlreadyExists', `Execution Already Exists: '${arn}'`);
    }
    const execution = this.begin(m, arn, name, input, value);
    if (isExpress) this.keep(this.express, execution, this.options.maxExpressExecutions ?? 1000);
    else this.keep(this.standard, execution, this.options.maxStandardExecutions ?? 10_000);
    return { executionArn: execution.executionArn, startDate: execution.startDate };
  }

  describeExecution(arn: unknown): ExecutionDescription {
    const e = typeof arn === 'string' ? (this.standard.get(arn) ?? this.express.get(arn)) : undefined;
    if (!e) throw new SfnApiError('ExecutionDoesNotExist', `Execution Does Not Exist: '${String(arn)}'`);
    return describe(e);
  }

  listExecutions(request: Record<string, unknown>): {
    executions: Record<string, unknown>[];
    nextToken?: string;
  } {
    const m = this.machine(request.stateMachineArn);
    const status = request.statusFilter;
    const max = Math.min(Math.max(Number(request.maxResults) || 100, 1), 1000);
    const offset = typeof request.nextToken === 'string' ? Number.parseInt(request.nextToken, 10) || 0 : 0;
    const store = m.spec.type === 'EXPRESS' ? this.express : this.standard;
    const all = [...store.values()]
      .filter((e) => e.stateMachineArn === m.spec.arn && (status === undefined || e.status === status))
      .reverse();
    const page = all.slice(offset, offset + max).map((e) => ({
      executionArn: e.executionArn,
      stateMachineArn: e.stateMachineArn,
      name: e.name,
      status: e.status,
      startDate: e.startDate,
      stopDate: e.stopDate,
    }));
    return offset + max < all.length
      ? { executions: page, nextToken: String(offset + max) }
      : { executions: page };
  }

  /** Waits for every running execution (tests, orderly shutdown), aborting them if `abort`. */
  async drain(abort = false): Promise<void> {
    const running = [...this.standard.values(), ...this.express.values()].filter(
      (e) => e.status === 'RUNNING',
    );
    if (abort) for (const e of running) e.abort?.();
    await Promise.all(running.map((e) => e.done));
  }

  private machine(arn: unknown): Machine {
    if (typeof arn !== 'string' || !arn.startsWith('arn:')) {
      throw new SfnApiError('InvalidArn', `Invalid Arn: '${String(arn)}'`);
    }
    const m = this.machines.get(arn);
    if (!m) throw new SfnApiError('StateMachineDoesNotExist', `State Machine Does Not Exist: '${arn}'`);
    return m;
  }

  private runnable(arn: unknown): Machine {
    const m = this.machine(arn);
    if (m.unsupported) throw new SfnApiError('InvalidDefinition', m.unsupported);
    return m;
  }

  private request(request: Record<string, unknown>): { name: string; input: string; value: unknown } {
    const name = request.name === undefined ? randomUUID() : request.name;
    if (typeof name !== 'string' || !NAME_RULE.test(name)) {
      throw new SfnApiError('InvalidName', `Invalid Name: '${String(name)}'`);
    }
    const input = request.input === undefined ? '{}' : request.input;
    if (typeof input !== 'string')
      throw new SfnApiError('InvalidExecutionInput', 'input must be a JSON string');
    // Counting UTF-16 units first avoids measuring bytes on the hot path for ordinary inputs.
    if (input.length * 3 > MAX_PAYLOAD_BYTES && Buffer.byteLength(input) > MAX_PAYLOAD_BYTES) {
      throw new SfnApiError(
        'ValidationException',
        `1 validation error detected: Value at 'input' failed to satisfy constraint: Member must have length less than or equal to ${MAX_PAYLOAD_BYTES}`,
      );
    }
    try {
      return { name, input, value: JSON.parse(input) };
    } catch (err) {
      throw new SfnApiError(
        'InvalidExecutionInput',
        `Invalid State Machine Execution Input: '${(err as Error).message}'`,
      );
    }
  }

  private begin(m: Machine, arn: string, name: string, input: string, value: unknown): Execution {
    const startDate = Date.now() / 1000;
    const execution = {
      executionArn: arn,
      stateMachineArn: m.spec.arn,
      name,
      status: 'RUNNING',
      startDate,
      input,
    } as Execution;
    const context = {
      Execution: { Id: arn, Name: name, RoleArn: `arn:aws:iam::${LOCAL_ACCOUNT}:role/${m.spec.name}-local` },
      StateMachine: { Id: m.spec.arn, Name: m.spec.name },
    };
    const run = (m.stateMachine as StateMachine).run(value as never, { ...m.runOptions, context });
    execution.abort = run.abort;
    execution.done = run.result.then(
      (output) => finish(execution, output),
      (err: unknown) => fail(execution, err),
    );
    return execution;
  }

  private keep(store: Map<string, Execution>, execution: Execution, max: number): void {
    store.set(execution.executionArn, execution);
    if (store.size <= max) return;
    // Oldest first (Map keeps insertion order); a running execution is skipped, not dropped.
    for (const [arn, e] of store) {
      if (store.size <= max) break;
      if (e.status !== 'RUNNING') store.delete(arn);
    }
  }
}

function finish(e: Execution, output: unknown): void {
  const json = JSON.stringify(output ?? null);
  e.stopDate = Date.now() / 1000;
  e.abort = undefined;
  if (json.length * 3 > MAX_PAYLOAD_BYTES && Buffer.byteLength(json) > MAX_PAYLOAD_BYTES) {
    e.status = 'FAILED';
    e.error = 'States.DataLimitExceeded';
    e.cause = `The state/task returned a result with a size exceeding the maximum number of bytes service limit (${MAX_PAYLOAD_BYTES}).`;
    return;
  }
  e.status = 'SUCCEEDED';
  e.output = json;
}

function fail(e: Execution, err: unknown): void {
  e.stopDate = Date.now() / 1000;
  e.abort = undefined;
  if (err instanceof ExecutionTimeoutError) {
    e.status = 'TIMED_OUT';
    e.error = 'States.Timeout';
    e.cause = 'The execution ran longer than its TimeoutSeconds';
  } else if (err instanceof ExecutionAbortedError) {
    e.status = 'ABORTED';
  } else {
    // ExecutionError wraps the state's error: its name is the ASL error, its message the cause.
    const cause = err instanceof ExecutionError && err.cause instanceof Error ? err.cause : (err as Error);
    e.status = 'FAILED';
    e.error = cause?.name ?? 'States.Runtime';
    e.cause = cause?.message ?? String(err);
  }
}

function describe(e: Execution): ExecutionDescription {
  const out: ExecutionDescription = {
    executionArn: e.executionArn,
    stateMachineArn: e.stateMachineArn,
    name: e.name,
    status: e.status,
    startDate: e.startDate,
    input: e.input,
  };
  if (e.stopDate !== undefined) out.stopDate = e.stopDate;
  if (e.output !== undefined) out.output = e.output;
  if (e.error !== undefined) out.error = e.error;
  if (e.cause !== undefined) out.cause = e.cause;
  return out;
}
