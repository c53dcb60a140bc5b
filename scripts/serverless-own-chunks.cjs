'use strict';
// A local serverless plugin: with esbuild's code splitting (serverless.yml, custom.esbuild), each
// function's chunks are written next to its handler (functions/<name>/chunk-*.mjs) in one build
// folder, and serverless-esbuild leaves the other functions' handler files out of a package but
// not their chunks. This adds to every function's package.patterns the exclusion of the other
// functions' handler folders, derived from their handlers, so a function added to serverless.yml
// needs no pattern of its own (test/deploy/template.test.ts checks what each package holds).
const { dirname } = require('node:path');

/**
 * The exclusion pattern for each function: every other function's handler folder.
 * @param {Record<string, { handler?: string }>} functions serverless.yml's functions
 * @returns {Map<string, string>} function key -> pattern (absent when no other folder exists)
 */
function otherFunctionsPatterns(functions) {
  const folders = new Map(
    Object.entries(functions)
      .filter(([, fn]) => typeof fn.handler === 'string')
      .map(([key, fn]) => [key, dirname(fn.handler)]),
  );
  const patterns = new Map();
  for (const [key, own] of folders) {
    const others = [...new Set([...folders.values()].filter((folder) => folder !== own))];
    if (others.length === 0) continue;
    patterns.set(key, others.length === 1 ? `!${others[0]}/**` : `!{${others.join(',')}}/**`);
  }
  return patterns;
}

class OwnChunksPlugin {
  constructor(serverless) {
    this.serverless = serverless;
    this.hooks = {
      // Before serverless-esbuild bundles and packs, which reads each function's patterns.
      'before:package:initialize': () => this.apply(),
    };
  }

  apply() {
    const functions = this.serverless.service.functions ?? {};
    for (const [key, pattern] of otherFunctionsPatterns(functions)) {
      const fn = functions[key];
      fn.package = { ...fn.package, patterns: [pattern, ...(fn.package?.patterns ?? [])] };
    }
  }
}

module.exports = OwnChunksPlugin;
module.exports.otherFunctionsPatterns = otherFunctionsPatterns;
