import { createRequire } from 'node:module';

/**
 * Powertools Tracer's module (aws-xray-sdk-core and its dependencies), imported by tracing.ts only
 * where something is traced. Kept in a module of its own so that in the bundles esbuild gives it a
 * chunk of its own, loaded on that import: in the shared chunk it was 150 KB (and a 200 KB source
 * map) that every function compiled at a cold start, traced or not. Why `require` and not an ES
 * import: the CommonJS build's `require('http')` runs when the tracer loads, where an ES import
 * of the ESM build would have esbuild hoist `import http from 'node:http'` to the top of the
 * chunk, and building that ES-module view of `node:http` loads undici (33 ms). In the bundles
 * `require` is the banner's; from source (tsx, jest) there is no `require` in an ES module.
 */
export const { Tracer } = (
  typeof require === 'function'
    ? require('@aws-lambda-powertools/tracer')
    : createRequire(import.meta.url)('@aws-lambda-powertools/tracer')
) as typeof import('@aws-lambda-powertools/tracer');
