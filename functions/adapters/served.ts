import type { Config } from '../core/config.js';
import { loadManifest, type Manifest } from '../core/manifest.js';
import { parseSageMakerMembers, servedManifest } from '../core/served.js';
import { logger } from './logger.js';

/** The manifest this process serves, and the SageMaker endpoint names it may call. */
export interface ServedModels {
  manifest: Manifest;
  endpointNames: ReadonlyMap<string, string>;
}

let cached: ServedModels | undefined;

/**
 * Loads the manifest once and leaves out SageMaker members without a configured endpoint,
 * logging each omission once per process (a note, not an error).
 */
export function servedModels(config: Config): ServedModels {
  if (!cached) {
    const full = loadManifest(config.manifestPath);
    const endpointNames = parseSageMakerMembers(config.sagemakerMembers, full);
    const { manifest, notes } = servedManifest(full, endpointNames);
    for (const note of notes) logger.warn('member left out', { note });
    cached = { manifest, endpointNames };
  }
  return cached;
}

/** Forgets the served manifest (the local stack and tests change the environment). */
export function resetServedModels(): void {
  cached = undefined;
}
