import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { loadManifest } from '../../functions/core/manifest.js';
import { parseSageMakerMembers } from '../../functions/core/served.js';
import { render } from './cfn.js';
import { ROOT } from './package-run.js';

interface Template {
  Resources: Record<string, { Properties: { Policies: { PolicyDocument: { Statement: unknown[] } }[] } }>;
}

const load = createRequire(import.meta.url);
const plugin = load('../../scripts/serverless-sagemaker-members.cjs') as {
  sagemakerEndpoints(value: string | undefined, manifest: unknown): string[];
  grantSageMakerMembers(template: Template, value: string | undefined, manifest: unknown): string[];
};

const MANIFEST = join(ROOT, 'models/manifest.json');
const raw = JSON.parse(readFileSync(MANIFEST, 'utf8')) as unknown;

function runnerTemplate(): Template {
  const logs = { Sid: 'OwnLogs', Effect: 'Allow', Action: ['logs:PutLogEvents'], Resource: 'x' };
  return {
    Resources: { RunnerRole: { Properties: { Policies: [{ PolicyDocument: { Statement: [logs] } }] } } },
  };
}

describe('FANOUT_SAGEMAKER_MEMBERS at deploy time (scripts/serverless-sagemaker-members.cjs)', () => {
  it.each([
    '',
    'bc-gradient-boosting',
    'bc-gradient-boosting=fanout-gb-prod',
    ' bc-gradient-boosting = Other-Endpoint , ',
  ])('names the endpoints the handlers will call for %j', (value) => {
    const atRunTime = [...new Set(parseSageMakerMembers(value, loadManifest(MANIFEST)).values())];
    expect(plugin.sagemakerEndpoints(value, raw)).toEqual(atRunTime);
  });

  it.each(['bc-nope', 'bc-logreg'])('refuses %j, as the handlers would', (value) => {
    expect(() => parseSageMakerMembers(value, loadManifest(MANIFEST))).toThrow(value);
    expect(() => plugin.sagemakerEndpoints(value, raw)).toThrow(`"${value}" is not a sagemaker model`);
  });

  it('allows the runner to invoke the named endpoints only, by their lower-case ARN', () => {
    const template = runnerTemplate();
    expect(plugin.grantSageMakerMembers(template, 'bc-gradient-boosting=My-GB-Endpoint', raw)).toEqual([
      'My-GB-Endpoint',
    ]);
    const statements = template.Resources.RunnerRole?.Properties.Policies[0]?.PolicyDocument.Statement as {
      Action: string[];
      Resource: unknown[];
    }[];
    expect(statements).toHaveLength(2);
    const invoke = statements[1] as { Action: string[]; Resource: unknown[] };
    expect(invoke.Action).toEqual(['sagemaker:InvokeEndpoint']);
    expect(invoke.Resource.map(render)).toEqual([
      // biome-ignore lint/suspicious/noTemplateCurlyInString: the rendered ARN reads so.
      'arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}:endpoint/my-gb-endpoint',
    ]);
  });

  it('grants nothing when no member is named', () => {
    const template = runnerTemplate();
    expect(plugin.grantSageMakerMembers(template, '', raw)).toEqual([]);
    expect(template).toEqual(runnerTemplate());
  });
});
