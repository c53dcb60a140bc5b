'use strict';
// A local serverless plugin: grants the runner sagemaker:InvokeEndpoint on exactly the endpoints
// that FANOUT_SAGEMAKER_MEMBERS (provider.environment in serverless.yml) names, and nothing when it
// names none. The value is checked against the manifest when packaging, so a typo fails the
// deployment instead of leaving a member out at run time. Same format as the handlers read it
// (functions/core/served.ts): comma-separated `modelId` or `modelId=endpointName`.
const { readFileSync } = require('node:fs');
const { resolve } = require('node:path');

const ROLE = 'RunnerRole';
const SID = 'InvokeSageMakerEndpoints';

/**
 * The endpoint names `value` enables: `modelId` takes the manifest's endpoint name, `modelId=name`
 * names its own. Throws for an id that is not a `kind: sagemaker` model of the manifest.
 * @param {string | undefined} value
 * @param {{ models?: { id: string, kind: string, endpoint?: { name: string } }[] }} manifest
 * @returns {string[]}
 */
function sagemakerEndpoints(value, manifest) {
  const models = new Map((manifest.models ?? []).map((m) => [m.id, m]));
  const names = [];
  for (const part of (value ?? '')
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const [id, name] = part.split('=').map((s) => s.trim());
    const model = models.get(id);
    if (!model || model.kind !== 'sagemaker' || !model.endpoint) {
      throw new Error(`FANOUT_SAGEMAKER_MEMBERS: "${id}" is not a sagemaker model of the manifest`);
    }
    names.push(name || model.endpoint.name);
  }
  return [...new Set(names)];
}

/**
 * The IAM statement allowing InvokeEndpoint on `names`, or undefined for none. SageMaker writes
 * endpoint ARNs in lower case, whatever the endpoint name's case.
 * @param {string[]} names
 */
function invokeStatement(names) {
  if (names.length === 0) return undefined;
  return {
    Sid: SID,
    Effect: 'Allow',
    Action: ['sagemaker:InvokeEndpoint'],
    Resource: names.map((name) => ({
      'Fn::Join': [
        '',
        [
          'arn:',
          { Ref: 'AWS::Partition' },
          ':sagemaker:',
          { Ref: 'AWS::Region' },
          ':',
          { Ref: 'AWS::AccountId' },
          `:endpoint/${name.toLowerCase()}`,
        ],
      ],
    })),
  };
}

/**
 * Adds the statement to the runner role of a compiled template (its first policy).
 * @param {{ Resources: Record<string, any> }} template
 * @param {string | undefined} value FANOUT_SAGEMAKER_MEMBERS
 * @param {object} manifest the parsed manifest
 * @returns {string[]} the endpoint names granted
 */
function grantSageMakerMembers(template, value, manifest) {
  const names = sagemakerEndpoints(value, manifest);
  const statement = invokeStatement(names);
  if (!statement) return names;
  const role = template.Resources[ROLE];
  const document = role?.Properties?.Policies?.[0]?.PolicyDocument;
  if (!document) throw new Error(`${ROLE} with an inline policy is missing from the template`);
  document.Statement = [...(document.Statement ?? []).filter((s) => s.Sid !== SID), statement];
  return names;
}

class SageMakerMembersPlugin {
  constructor(serverless) {
    this.serverless = serverless;
    this.hooks = {
      // Checked first, so a wrong member fails before anything is bundled.
      'before:package:initialize': () => this.run(() => sagemakerEndpoints(this.members(), this.manifest())),
      // After serverless.yml's resources (the roles) are merged into the template, before it is saved.
      'after:aws:package:finalize:mergeCustomProviderResources': () =>
        this.run(() =>
          grantSageMakerMembers(
            this.serverless.service.provider.compiledCloudFormationTemplate,
            this.members(),
            this.manifest(),
          ),
        ),
    };
  }

  members() {
    return this.serverless.service.provider.environment?.FANOUT_SAGEMAKER_MEMBERS;
  }

  manifest() {
    const env = this.serverless.service.provider.environment ?? {};
    const path = resolve(this.serverless.serviceDir, env.FANOUT_MANIFEST ?? 'models/manifest.json');
    return JSON.parse(readFileSync(path, 'utf8'));
  }

  run(fn) {
    try {
      fn();
    } catch (err) {
      throw new this.serverless.classes.Error(err.message);
    }
  }
}

module.exports = SageMakerMembersPlugin;
module.exports.sagemakerEndpoints = sagemakerEndpoints;
module.exports.grantSageMakerMembers = grantSageMakerMembers;
