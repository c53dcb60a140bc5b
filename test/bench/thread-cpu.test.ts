import {
  MAIN_THREAD,
  stackCpuMs,
  type ThreadCpu,
  threadCpuSince,
  V8_HELPERS,
  V8_PROFILER,
} from '../../bench/lib/stack.js';

const at = (entries: [string, string, number][]) =>
  new Map<string, ThreadCpu>(entries.map(([tid, name, ms]) => [tid, { name, ms }]));

describe("the bench's CPU split by thread", () => {
  it('puts the main thread first, each worker instance on its own row, and V8 helpers and libuv together', () => {
    const before = at([
      ['100', 'node', 1000],
      ['101', 'node', 50],
      ['102', 'node', 10],
      ['103', 'lambda:runner', 200],
      ['104', 'libuv-worker', 5],
    ]);
    const after = at([
      ['100', 'node', 1400],
      ['101', 'node', 80],
      ['102', 'DelayedTaskSche', 12],
      ['103', 'lambda:runner', 260],
      ['104', 'libuv-worker', 9],
      ['105', 'libuv-worker', 3],
      ['106', 'lambda:runner', 90],
      ['107', 'node', 0],
    ]);
    expect(threadCpuSince(100, before, after)).toEqual([
      { thread: MAIN_THREAD, ms: 400 },
      { thread: 'lambda:runner instance (thread 106)', ms: 90 },
      { thread: 'lambda:runner instance (thread 103)', ms: 60 },
      { thread: V8_HELPERS, ms: 32 },
      { thread: 'libuv thread pool', ms: 7 },
    ]);
  });

  it("shows V8's profiler threads on a row of their own and leaves them out of the stack's total", () => {
    const before = at([
      ['100', 'node', 0],
      ['101', 'v8:ProfEvntProc', 0],
      ['102', 'v8:ProfEvntProc', 0],
      ['103', 'node', 0],
    ]);
    const after = at([
      ['100', 'node', 500],
      ['101', 'v8:ProfEvntProc', 40],
      ['102', 'v8:ProfEvntProc', 30],
      ['103', 'node', 20],
    ]);
    const rows = threadCpuSince(100, before, after);
    expect(rows).toEqual([
      { thread: MAIN_THREAD, ms: 500 },
      { thread: V8_PROFILER, ms: 70 },
      { thread: V8_HELPERS, ms: 20 },
    ]);
    expect(stackCpuMs(rows)).toBe(520);
  });
});
