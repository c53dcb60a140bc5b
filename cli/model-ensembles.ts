import type { Manifest } from '../functions/core/manifest.js';
import { type Doc, SLUG } from './manifest-doc.js';
import type { AddArgs } from './models-args.js';
import { ModelsError } from './models-error.js';

/** Adds the model to `args.ensemble` in `doc` (or creates it); returns what changed, for the summary. */
export function joinEnsemble(
  doc: Doc,
  current: Manifest,
  args: AddArgs,
  features: string[],
  labels: string[],
  shown: string,
): string {
  const name = args.ensemble as string;
  const raw = doc.ensembles.find((e) => e.name === name);
  if (!raw) {
    if (!SLUG.test(name))
      throw new ModelsError(`--ensemble "${name}": use lowercase letters, digits and dashes`);
    if (current.models.has(name) && name !== args.id) {
      throw new ModelsError(`--ensemble "${name}" is a model id; ensemble names and model ids must differ`);
    }
    if (name === args.id)
      throw new ModelsError(`--ensemble "${name}" is the model's own id; pick another name`);
    if (args.weight !== undefined) {
      throw new ModelsError(`--weight has no effect in a new soft-vote ensemble; leave it out`);
    }
    doc.ensembles.push({
      name,
      description: `Created by fanout models add with ${args.id}`,
      members: [args.id],
      strategy: 'soft-vote',
    });
    return `created ensemble ${name} (soft-vote, quorum 1) with ${args.id}`;
  }
  const spec = current.ensembles.get(name);
  if (!spec) throw new ModelsError(`ensemble "${name}" is not in ${shown}`);
  if (raw.members.includes(args.id)) return `${args.id} is already a member of ${name}`;
  if (spec.features.join('\u0000') !== features.join('\u0000')) {
    throw new ModelsError(
      `ensemble ${name} takes other features than feature set "${args.features}" (names and order must match)`,
    );
  }
  if (spec.labels.join('\u0000') !== labels.join('\u0000')) {
    throw new ModelsError(
      `ensemble ${name} gives other labels than label set "${args.labels}" (${spec.labels.join(', ')} vs ${labels.join(', ')})`,
    );
  }
  if (raw.strategy === 'stacking') {
    throw new ModelsError(
      `ensemble ${name} combines its members with a stacking meta-model (${raw.stacking?.file}) trained on the scores of exactly [${raw.members.join(', ')}]: it cannot take a new member without being retrained. Add ${args.id} to a soft-vote or weighted-mean ensemble instead (e.g. --ensemble ${[...current.ensembles.values()].find((e) => e.strategy !== 'stacking' && e.features.join() === features.join())?.name ?? `${name}-vote`}), or retrain the meta-model over the new member list (README: "Retraining the stacking meta-model") and add it to the members by hand`,
    );
  }
  if (raw.strategy === 'weighted-mean') {
    if (args.weight === undefined) {
      const weights = spec.members.map((m, i) => `${m} ${spec.weights[i]}`).join(', ');
      throw new ModelsError(
        `ensemble ${name} is a weighted mean: pass --weight <w> for ${args.id} (its members weigh: ${weights})`,
      );
    }
    raw.weights = { ...(raw.weights ?? {}), [args.id]: args.weight };
  } else if (args.weight !== undefined) {
    throw new ModelsError(
      `--weight has no effect on ensemble ${name} (strategy ${raw.strategy}); leave it out`,
    );
  }
  raw.members.push(args.id);
  const quorum = raw.quorum ?? Math.floor(raw.members.length / 2) + 1;
  return `ensemble ${name} (${raw.strategy}): now ${raw.members.length} members, quorum ${quorum}${raw.quorum === undefined ? ' (a majority, the default)' : ` (set in ${shown}; raise it there if the new member should count towards it)`}${args.weight !== undefined ? `, weight ${args.weight}` : ''}`;
}
