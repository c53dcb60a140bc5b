import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { BATCH_ROWS } from '../../cli/model-timeout.js';
import {
  ANSWER_MARGIN_MS,
  describeTimeoutCut,
  type FanOutMember,
  manifestTimeoutCuts,
  memberBudgetSeconds,
  memberWaitLimits,
  runnerMemberLimit,
  withinBudget,
} from '../../functions/core/targets.js';

const members: FanOutMember[] = [
  { model: 'quick', timeoutSeconds: 5 },
  { model: 'slow-endpoint', timeoutSeconds: 45 },
  { model: 'shadow', timeoutSeconds: 60, shadow: true },
];

const ROOT = resolve(import.meta.dirname, '../..');

describe('member timeouts within what the caller can wait', () => {
  it('cuts only the timeouts past the budget, shadows included, and keeps the rest as they are', () => {
    expect(withinBudget(members, 26)).toEqual([
      { model: 'quick', timeoutSeconds: 5 },
      { model: 'slow-endpoint', timeoutSeconds: 26 },
      { model: 'shadow', timeoutSeconds: 26, shadow: true },
    ]);
  });

  it('returns the same list when every member fits', () => {
    expect(withinBudget(members, 60)).toBe(members);
  });

  it('never goes below one second, the smallest timeout a state machine takes', () => {
    expect(withinBudget(members, 0.4).map((m) => m.timeoutSeconds)).toEqual([1, 1, 1]);
  });

  it('tells which members it cut, with what the manifest says and what they wait now', () => {
    const told: unknown[] = [];
    withinBudget(members, 26, (cut) => told.push(cut));
    withinBudget(members, 60, (cut) => told.push(cut));
    expect(told).toEqual([
      [
        { model: 'slow-endpoint', timeoutSeconds: 45, waitsSeconds: 26 },
        { model: 'shadow', timeoutSeconds: 60, waitsSeconds: 26 },
      ],
    ]);
  });

  it('waits no longer than the runner function can: a second less than its timeout', () => {
    expect(runnerMemberLimit(30)).toBe(29);
    expect(memberBudgetSeconds(900_000, 30)).toBe(29);
    expect(memberBudgetSeconds(20_000, 30)).toBe(17);
  });

  it("leaves the API function's margin for combining and answering, in whole seconds", () => {
    expect(memberBudgetSeconds(29_000)).toBe(Math.floor((29_000 - ANSWER_MARGIN_MS) / 1000));
    expect(memberBudgetSeconds(ANSWER_MARGIN_MS + 1_999)).toBe(1);
    expect(memberBudgetSeconds(100)).toBe(1);
  });
});

describe('manifest timeouts the functions cannot give, found before serving', () => {
  const models = [
    { id: 'quick', timeoutSeconds: 5 },
    { id: 'sync-only', timeoutSeconds: 28 },
    { id: 'slow', timeoutSeconds: 60 },
  ];

  it('takes the limits from the runner and API timeouts (the API one optional)', () => {
    expect(memberWaitLimits(30, 29)).toEqual({ batchSeconds: 29, syncSeconds: 26 });
    expect(memberWaitLimits(30)).toEqual({ batchSeconds: 29 });
    expect(memberWaitLimits(120, 60)).toEqual({ batchSeconds: 119, syncSeconds: 57 });
  });

  it('names each model cut on a path, with what it waits there, in manifest order', () => {
    expect(manifestTimeoutCuts(models, memberWaitLimits(30, 29))).toEqual([
      { model: 'sync-only', timeoutSeconds: 28, syncSeconds: 26 },
      { model: 'slow', timeoutSeconds: 60, batchSeconds: 29, syncSeconds: 26 },
    ]);
    expect(manifestTimeoutCuts(models, memberWaitLimits(30))).toEqual([
      { model: 'slow', timeoutSeconds: 60, batchSeconds: 29 },
    ]);
    expect(manifestTimeoutCuts(models, memberWaitLimits(900, 900))).toEqual([]);
  });

  it('says a cut in one line', () => {
    expect(manifestTimeoutCuts(models, memberWaitLimits(30, 29)).map(describeTimeoutCut)).toEqual([
      'sync-only: its timeout of 28 s is cut to 26 s on the synchronous path; past that it is timed out by name',
      'slow: its timeout of 60 s is cut to 29 s in batch jobs and 26 s on the synchronous path; past that it is timed out by name',
    ]);
  });
});

describe('the rows a batch job hands each member, as fanout models add times them', () => {
  it("are the batch state machine's MaxItemsPerBatch", () => {
    const asl = JSON.parse(readFileSync(join(ROOT, 'statemachines/batch.asl.json'), 'utf8'));
    expect(asl.States.ScoreBatches.ItemBatcher.MaxItemsPerBatch).toBe(BATCH_ROWS);
  });
});
