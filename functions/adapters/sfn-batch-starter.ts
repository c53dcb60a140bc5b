import { ExecutionAlreadyExists, type SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { UpstreamError } from '../core/errors.js';
import type { BatchStarter } from '../core/ports.js';

/** Starts the Standard batch state machine. A name in use means a duplicated event. */
export class SfnBatchStarter implements BatchStarter {
  constructor(
    private readonly client: SFNClient,
    private readonly stateMachineArn: string,
  ) {}

  async start(name: string, input: unknown): Promise<'started' | 'exists'> {
    try {
      await this.client.send(
        new StartExecutionCommand({
          stateMachineArn: this.stateMachineArn,
          name,
          input: JSON.stringify(input),
        }),
      );
      return 'started';
    } catch (err) {
      if (err instanceof ExecutionAlreadyExists || (err as Error).name === 'ExecutionAlreadyExists')
        return 'exists';
      throw new UpstreamError(`starting batch execution ${name} failed: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }
}
