import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse, type Tags } from 'yaml';

/** Reports a problem at a field of serverless.yml (`provider.environment.X`); never returns. */
export type Fail = (field: string, message: string) => never;

/** What variables resolve to locally. */
export interface VariableContext {
  /** The parsed serverless.yml (for `${self:...}`). */
  doc: Record<string, unknown>;
  /** Folder of serverless.yml (for `${file(...)}`). */
  dir: string;
  /** `${opt:stage}` and `${sls:stage}`. */
  stage: string;
  /** `${opt:region}`; unset means the file's own default applies. */
  region?: string;
  /** `${aws:accountId}`. */
  accountId: string;
  env: NodeJS.ProcessEnv;
  fail: Fail;
}

// CloudFormation short forms, so a serverless.yml using them still parses.
const cfnTags: Tags = [
  { tag: '!Ref', resolve: (value: string) => ({ Ref: value }) },
  { tag: '!GetAtt', resolve: (value: string) => ({ 'Fn::GetAtt': value.split('.') }) },
  { tag: '!Sub', resolve: (value: string) => ({ 'Fn::Sub': value }) },
];

/** Parses YAML as serverless does, CloudFormation tags (`!Ref`, `!GetAtt`, `!Sub`) included. */
export function parseYaml(source: string): unknown {
  return parse(source, { customTags: cfnTags });
}

/**
 * Resolves every serverless variable in `value` (a parsed document or part of one): `${self:a.b}`,
 * `${sls:stage}`, `${opt:stage|region}`, `${env:NAME}`, `${aws:region|accountId}`, `${file(path)}`
 * (JSON or YAML, optionally `:sub.path`), with `, fallback` alternatives. Innermost first, so
 * nested variables work; a whole-string variable keeps its type (a file stays an object).
 */
export function resolveVariables(value: unknown, field: string, ctx: VariableContext): unknown {
  return new Resolver(ctx).tree(value, field);
}

class Resolver {
  private depth = 0;

  constructor(private readonly ctx: VariableContext) {}

  tree(value: unknown, field: string): unknown {
    if (typeof value === 'string') return this.string(value, field);
    if (Array.isArray(value)) return value.map((v, i) => this.tree(v, `${field}[${i}]`));
    if (value !== null && typeof value === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value)) out[k] = this.tree(v, field ? `${field}.${k}` : k);
      return out;
    }
    return value;
  }

  private string(input: string, field: string): unknown {
    let current: unknown = input;
    const innermost = /\$\{([^${}]*)\}/;
    for (let guard = 0; typeof current === 'string'; guard++) {
      const m = innermost.exec(current);
      if (!m) return current;
      if (guard > 100) this.ctx.fail(field, 'too many nested variables');
      const value = this.expression(m[1] as string, field);
      if (m[0] === current) {
        current = value;
      } else {
        if (value !== null && typeof value === 'object') {
          this.ctx.fail(field, `\${${m[1]}} is an object and cannot be part of a string`);
        }
        current = current.slice(0, m.index) + String(value) + current.slice(m.index + m[0].length);
      }
    }
    return current;
  }

  private expression(expr: string, field: string): unknown {
    for (const part of splitTopLevel(expr)) {
      const value = this.source(part.trim(), field);
      if (value !== undefined && value !== null) return value;
    }
    return this.ctx.fail(field, `\${${expr}} has no value`);
  }

  private source(part: string, field: string): unknown {
    const { ctx } = this;
    const quoted = /^(['"])(.*)\1$/.exec(part);
    if (quoted) return quoted[2];
    if (/^-?\d+(\.\d+)?$/.test(part)) return Number(part);
    const file = /^file\((.+)\)(?::(.+))?$/.exec(part);
    if (file) return this.file(file[1] as string, file[2], part, field);
    const colon = part.indexOf(':');
    const name = part.slice(colon + 1).trim();
    switch (colon > 0 ? part.slice(0, colon) : '') {
      case 'self':
        return this.nested(() => this.tree(pick(ctx.doc, name), field), field);
      case 'sls':
        if (name === 'stage') return ctx.stage;
        break;
      case 'opt':
        if (name === 'stage') return ctx.stage;
        if (name === 'region') return ctx.region;
        return undefined;
      case 'env':
        return ctx.env[name];
      case 'aws':
        if (name === 'accountId') return ctx.accountId;
        if (name === 'region') return ctx.region ?? this.tree(pick(ctx.doc, 'provider.region'), field);
        break;
    }
    return ctx.fail(
      field,
      `unsupported variable \${${part}} (the local stack knows self, sls, opt, env, aws, file)`,
    );
  }

  private file(pathText: string, sub: string | undefined, part: string, field: string): unknown {
    const path = resolve(this.ctx.dir, pathText.trim().replace(/^['"]|['"]$/g, ''));
    let content: unknown;
    try {
      const source = readFileSync(path, 'utf8');
      content = /\.ya?ml$/.test(path) ? parseYaml(source) : JSON.parse(source);
    } catch (err) {
      return this.ctx.fail(field, `\${${part}}: ${(err as Error).message}`);
    }
    // serverless resolves variables inside included files too.
    return this.nested(() => this.tree(sub ? pick(content, sub) : content, field), field);
  }

  private nested<T>(fn: () => T, field: string): T {
    if (++this.depth > 50) this.ctx.fail(field, 'variables refer to each other in a loop');
    try {
      return fn();
    } finally {
      this.depth--;
    }
  }
}

/** Splits `a, 'b,c', file(x)` at the commas that separate alternatives. */
function splitTopLevel(expr: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let quote = '';
  let start = 0;
  for (let i = 0; i < expr.length; i++) {
    const c = expr[i];
    if (quote) {
      if (c === quote) quote = '';
    } else if (c === "'" || c === '"') quote = c;
    else if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === ',' && depth === 0) {
      parts.push(expr.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(expr.slice(start));
  return parts;
}

function pick(value: unknown, path: string): unknown {
  let current = value;
  for (const key of path.split('.')) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<string, unknown>)[key];
  }
  return current;
}
