import { ANSWER_MARGIN_MS, memberBudgetSeconds } from '../../functions/api/predict.js';
import { type FanOutMember, withinBudget } from '../../functions/core/targets.js';

const members: FanOutMember[] = [
  { model: 'quick', timeoutSeconds: 5 },
  { model: 'slow-endpoint', timeoutSeconds: 45 },
  { model: 'shadow', timeoutSeconds: 60, shadow: true },
];

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

  it("leaves the API function's margin for combining and answering, in whole seconds", () => {
    expect(memberBudgetSeconds(29_000)).toBe(Math.floor((29_000 - ANSWER_MARGIN_MS) / 1000));
    expect(memberBudgetSeconds(ANSWER_MARGIN_MS + 1_999)).toBe(1);
    expect(memberBudgetSeconds(100)).toBe(1);
  });
});
