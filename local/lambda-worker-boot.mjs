// The entry of a local Lambda instance (worker thread). Workers load the TypeScript handlers with
// Node's own type stripping (`--experimental-transform-types`, set by the pool), which is faster to
// start than a loader per worker and works the same under `npm start` and jest. Sources import
// `./x.js` for `./x.ts` (NodeNext style); this hook resolves such a specifier to the `.ts` file
// when no `.js` file exists, as tsc and tsx do.
import { registerHooks } from 'node:module';

registerHooks({
  resolve(specifier, context, nextResolve) {
    try {
      return nextResolve(specifier, context);
    } catch (err) {
      const local = specifier.startsWith('.') || specifier.startsWith('/') || specifier.startsWith('file:');
      if (err?.code === 'ERR_MODULE_NOT_FOUND' && local && specifier.endsWith('.js')) {
        return nextResolve(`${specifier.slice(0, -3)}.ts`, context);
      }
      throw err;
    }
  },
});

await import('./lambda-worker.ts');
