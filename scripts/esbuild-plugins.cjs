// esbuild plugins for the function bundles (serverless.yml: custom.esbuild.plugins).
const { existsSync, readFileSync } = require('node:fs');
const { dirname, join } = require('node:path');

/**
 * With `splitting`, esbuild puts a dynamically imported CommonJS module in a chunk whose only
 * export is `default` (module.exports), where without splitting `import()` gives its named exports
 * too (esbuild issue #3245). The AWS SDK's default credential chain does
 * `const { fromIni } = await import('@aws-sdk/credential-provider-ini')` from CommonJS code, so
 * outside Lambda's environment credentials (a profile, SSO, a container's or an instance's role)
 * every client failed with "n is not a function". Such an import is pointed at a small ES module
 * that imports the CommonJS one and re-exports its names one by one (read by loading it here, at
 * build time); it still gets a chunk of its own, loaded on that import.
 */
const cjsDynamicImportInterop = {
  name: 'cjs-dynamic-import-interop',
  setup(build) {
    const namesOf = new Map();
    build.onResolve({ filter: /.*/ }, async (args) => {
      if (args.kind !== 'dynamic-import' || args.pluginData?.interop) return undefined;
      const resolved = await build.resolve(args.path, {
        kind: 'dynamic-import',
        importer: args.importer,
        resolveDir: args.resolveDir,
        pluginData: { interop: true },
      });
      if (resolved.errors.length > 0 || resolved.external || !isCommonJs(resolved.path)) return undefined;
      let names;
      try {
        names = Object.keys(require(resolved.path)).filter(
          (name) => name !== 'default' && /^[A-Za-z_$][\w$]*$/.test(name),
        );
      } catch {
        return undefined; // left as esbuild builds it
      }
      namesOf.set(resolved.path, names);
      return { path: resolved.path, namespace: 'cjs-interop' };
    });
    build.onLoad({ filter: /.*/, namespace: 'cjs-interop' }, (args) => ({
      contents: [
        `import * as m from ${JSON.stringify(args.path)};`,
        ...namesOf.get(args.path).map((name) => `export const ${name} = m.${name};`),
        'export default m.default;',
      ].join('\n'),
      resolveDir: dirname(args.path),
      loader: 'js',
    }));
  },
};

/**
 * Whether a file is CommonJS: `.cjs`, or `.js` with no ES module statement (`import`/`export` at
 * the start of a line) under a package.json without "type": "module". A package's `dist-es` build
 * has no package.json of its own, so the syntax decides, as it does for Node and esbuild.
 */
function isCommonJs(file) {
  if (file.endsWith('.cjs')) return true;
  if (!file.endsWith('.js')) return false;
  if (/^\s*(import|export)[\s{*]/m.test(readFileSync(file, 'utf8'))) return false;
  for (let dir = dirname(file); dir !== dirname(dir); dir = dirname(dir)) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) return JSON.parse(readFileSync(pkg, 'utf8')).type !== 'module';
  }
  return true;
}

module.exports = [cjsDynamicImportInterop];
