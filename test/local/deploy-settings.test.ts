import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { driftRuleOf, readDeploySettings } from '../../local/deploy-settings.js';
import { DEFAULT_DRIFT_RULE } from '../../local/observability/dashboard-model.js';
import { loadServerlessConfig } from '../../local/serverless-config.js';

const readAgreementMin = (file: string) => readDeploySettings(file).agreementMin;

const REPO = join(import.meta.dirname, '..', '..');

describe("the drift alarm's threshold, as a command reads it from serverless.yml", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'fanout-deploy-settings-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const file = (name: string, alarms: string) => {
    const path = join(dir, `${name}.yml`);
    writeFileSync(path, `service: s\ncustom:\n  alarms:\n${alarms}\n`);
    return path;
  };

  it("reads the repository's own setting", () => {
    expect(readAgreementMin(join(REPO, 'serverless.yml'))).toBe(0.9);
  });

  it('takes a value the file sets', () => {
    expect(readAgreementMin(file('set', '    memberAgreementMin: 0.8'))).toBe(0.8);
  });

  it('falls back to the default without the setting, the file, or with a value the package would refuse', () => {
    expect(readAgreementMin(file('unset', '    periodSeconds: 300'))).toBe(DEFAULT_DRIFT_RULE.agreementMin);
    expect(readAgreementMin(join(dir, 'missing.yml'))).toBe(DEFAULT_DRIFT_RULE.agreementMin);
    expect(readAgreementMin(file('bad', '    memberAgreementMin: 90'))).toBe(DEFAULT_DRIFT_RULE.agreementMin);
  });

  it('reads the rows the rule needs for the local dashboard too, each setting on its own', () => {
    const rule = (name: string, alarms: string) =>
      driftRuleOf(loadServerlessConfig({ file: file(name, alarms) }));
    expect(
      rule(
        'all',
        '    memberAgreementMin: 0.75\n    memberAgreementMinRows: 20\n    agreementPeriodSeconds: 7200',
      ),
    ).toEqual({ agreementMin: 0.75, minRows: 20, periodSeconds: 7200 });
    expect(rule('bad', '    memberAgreementMinRows: 2.5\n    agreementPeriodSeconds: 90')).toEqual(
      DEFAULT_DRIFT_RULE,
    );
    expect(driftRuleOf(loadServerlessConfig({ file: join(REPO, 'serverless.yml') }))).toEqual(
      DEFAULT_DRIFT_RULE,
    );
  });
});
