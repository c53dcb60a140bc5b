import { StateMachine } from 'aws-local-stepfunctions';
import { dropUnreadEventLogs } from '../../local/sfn-event-logs.js';

const definition = {
  StartAt: 'Each',
  States: {
    Each: {
      Type: 'Map',
      ItemsPath: '$.items',
      ItemProcessor: {
        StartAt: 'Wrap',
        States: { Wrap: { Type: 'Pass', Parameters: { 'v.$': '$' }, End: true } },
      },
      ResultPath: '$.out',
      Next: 'Done',
    },
    Done: { Type: 'Succeed' },
  },
} as const;

describe('dropUnreadEventLogs', () => {
  beforeAll(() => dropUnreadEventLogs());

  it('keeps results, Map iterations included, and logs nothing', async () => {
    const run = new StateMachine(definition as never).run({ items: [1, 2, 3] } as never);
    await expect(run.result).resolves.toEqual({ items: [1, 2, 3], out: [{ v: 1 }, { v: 2 }, { v: 3 }] });
    const events: unknown[] = [];
    for await (const event of run.eventLogs) events.push(event);
    expect(events).toEqual([]);
  });

  it('still ends a failed execution with its error', async () => {
    const failing = { StartAt: 'F', States: { F: { Type: 'Fail', Error: 'E', Cause: 'c' } } };
    await expect(new StateMachine(failing as never).run({} as never).result).rejects.toThrow();
  });

  it('is idempotent', async () => {
    dropUnreadEventLogs();
    await expect(new StateMachine(definition as never).run({ items: [4] } as never).result).resolves.toEqual({
      items: [4],
      out: [{ v: 4 }],
    });
  });
});
