import { existsSync } from 'node:fs';
import { loadServerlessConfig } from './serverless-config.js';

/** The drift alarm's threshold when serverless.yml sets none (scripts/serverless-observability.cjs). */
export const DEFAULT_AGREEMENT_MIN = 0.9;

/**
 * The share of rows under which a counted member's agreement alarm fires
 * (`custom.alarms.memberAgreementMin` in serverless.yml), so a command can say whether a member
 * would trip it; the default when the file is missing, unreadable, or says something the package
 * step would refuse.
 */
export function readAgreementMin(file = 'serverless.yml'): number {
  if (!existsSync(file)) return DEFAULT_AGREEMENT_MIN;
  try {
    const min = Number(loadServerlessConfig({ file }).alarms.memberAgreementMin ?? DEFAULT_AGREEMENT_MIN);
    return min > 0 && min <= 1 ? min : DEFAULT_AGREEMENT_MIN;
  } catch {
    return DEFAULT_AGREEMENT_MIN;
  }
}
