import { QuorumNotMetError } from '../../functions/core/errors.js';
import type { MemberOutcome } from '../../functions/core/outcomes.js';
import { checkQuorum } from '../../functions/core/quorum.js';

const ok = (model: string): MemberOutcome => ({ model, status: 'ok', probabilities: [[0.5, 0.5]] });
const failed = (model: string, message: string, name = 'ModelRunError'): MemberOutcome => ({
  model,
  status: 'failed',
  error: { name, message },
});
const timedOut = (model: string): MemberOutcome => ({
  model,
  status: 'timeout',
  error: { name: 'States.Timeout', message: `${model}: did not answer within its timeout` },
});

function notMet(outcomes: MemberOutcome[], quorum: number): QuorumNotMetError {
  try {
    checkQuorum('demo', outcomes, quorum);
  } catch (err) {
    expect(err).toBeInstanceOf(QuorumNotMetError);
    return err as QuorumNotMetError;
  }
  throw new Error('expected the quorum check to fail');
}

describe('checkQuorum', () => {
  it('passes, not degraded, when every member answered', () => {
    const result = checkQuorum('demo', [ok('a'), ok('b'), ok('c')], 2);
    expect(result.degraded).toBe(false);
    expect(result.answered.map((o) => o.model)).toEqual(['a', 'b', 'c']);
    expect(result.failed).toEqual([]);
  });

  it('passes degraded when some members failed but the quorum answered', () => {
    const result = checkQuorum('demo', [ok('a'), failed('b', 'b: boom'), ok('c')], 2);
    expect(result.degraded).toBe(true);
    expect(result.answered.map((o) => o.model)).toEqual(['a', 'c']);
    expect(result.failed.map((o) => o.model)).toEqual(['b']);
  });

  it('passes when exactly the quorum answered', () => {
    expect(checkQuorum('demo', [ok('a'), timedOut('b'), timedOut('c')], 1).degraded).toBe(true);
  });

  it('counts a timeout as a failure, keeping its status', () => {
    const result = checkQuorum('demo', [ok('a'), timedOut('b'), ok('c')], 2);
    expect(result.failed).toEqual([timedOut('b')]);
  });

  it('fails below the quorum, naming every failed member, its status and why', () => {
    const err = notMet([ok('a'), failed('b', 'b: cannot load b.onnx'), timedOut('c')], 2);
    expect(err.message).toBe(
      'ensemble "demo": 1 of 3 members answered, quorum is 2; failed: ' +
        'b (failed: b: cannot load b.onnx); c (timeout: c: did not answer within its timeout)',
    );
    expect(err.details).toEqual({
      ensemble: 'demo',
      quorum: 2,
      answered: ['a'],
      failed: [
        { model: 'b', status: 'failed', error: { name: 'ModelRunError', message: 'b: cannot load b.onnx' } },
        {
          model: 'c',
          status: 'timeout',
          error: { name: 'States.Timeout', message: 'c: did not answer within its timeout' },
        },
      ],
    });
  });

  it('maps a missed quorum to HTTP 503 with the quorum_not_met code', () => {
    const err = notMet([failed('a', 'a: x')], 1);
    expect(err.status).toBe(503);
    expect(err.code).toBe('quorum_not_met');
    expect(err.name).toBe('QuorumNotMetError');
  });

  it('says "no answer" for a failed member that carries no error', () => {
    const err = notMet([{ model: 'a', status: 'failed' }, ok('b')], 2);
    expect(err.message).toContain('failed: a (failed: no answer)');
  });

  it('fails when nobody answered', () => {
    const err = notMet([failed('a', 'a: x'), failed('b', 'b: y')], 1);
    expect(err.message).toContain('0 of 2 members answered, quorum is 1');
    expect(err.details).toMatchObject({ answered: [] });
  });
});
