import { readFileSync } from 'node:fs';
import { ModelsError } from './models-error.js';

/** The manifest as a JSON document, as the CLI edits it (the fields it touches). */
export type Doc = {
  featureSets?: Record<string, string[]>;
  labelSets?: Record<string, string[]>;
  models: Record<string, unknown>[];
  ensembles: {
    name: string;
    members: string[];
    strategy: string;
    weights?: Record<string, number>;
    quorum?: number;
    stacking?: { file: string };
    description?: string;
  }[];
} & Record<string, unknown>;

/** Model ids and ensemble names: lowercase letters, digits and dashes. */
export const SLUG = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** Reads the manifest file as a document to edit. */
export function readManifestDoc(path: string): Doc {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ModelsError(`cannot read the manifest ${path}: ${(err as Error).message}`);
  }
  return JSON.parse(text) as Doc;
}

/** A feature or label set by name, or an error listing the sets there are. */
export function namedSet(
  sets: Record<string, string[]> | undefined,
  name: string,
  flag: string,
  key: string,
  shown: string,
): string[] {
  const found = sets && Object.hasOwn(sets, name) ? sets[name] : undefined;
  if (!found) {
    const known = Object.keys(sets ?? {});
    throw new ModelsError(
      `${flag} "${name}" is not in ${key} of ${shown}${known.length ? ` (it has: ${known.join(', ')})` : ''}; add the set there first`,
    );
  }
  return found;
}
