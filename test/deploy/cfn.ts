import type { Resource } from './package-run.js';

/** An IAM policy statement as templates write it. */
export interface Statement {
  Sid?: string;
  Effect: 'Allow' | 'Deny';
  Action?: string | string[];
  NotAction?: unknown;
  Resource?: unknown;
  NotResource?: unknown;
  Condition?: Record<string, unknown>;
}

/**
 * A CloudFormation value as readable text: `{Ref: X}` → `X`, `{Fn::GetAtt: [X, Arn]}` → `X.Arn`,
 * `Fn::Join` joined, pseudo parameters as `${AWS::Region}`.
 */
export function render(value: unknown): string {
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) return value.map(render).join(',');
  const v = value as Record<string, unknown>;
  if (typeof v.Ref === 'string') return v.Ref.startsWith('AWS::') ? `\${${v.Ref}}` : v.Ref;
  if (Array.isArray(v['Fn::GetAtt'])) return (v['Fn::GetAtt'] as string[]).join('.');
  if (Array.isArray(v['Fn::Join'])) {
    const [sep, parts] = v['Fn::Join'] as [string, unknown[]];
    return parts.map(render).join(sep);
  }
  return JSON.stringify(value);
}

/** Every statement of a role's inline policies. */
export function roleStatements(role: Resource): Statement[] {
  const policies = (role.Properties?.Policies ?? []) as { PolicyDocument: { Statement: Statement[] } }[];
  return policies.flatMap((p) => p.PolicyDocument.Statement);
}

/** Every policy statement in the template: roles' inline policies and policy resources. */
export function allStatements(
  resources: Record<string, Resource>,
): { owner: string; statement: Statement }[] {
  const out: { owner: string; statement: Statement }[] = [];
  for (const [id, r] of Object.entries(resources)) {
    if (r.Type === 'AWS::IAM::Role') {
      for (const statement of roleStatements(r)) out.push({ owner: id, statement });
    }
    if (r.Type === 'AWS::IAM::Policy' || r.Type === 'AWS::IAM::ManagedPolicy') {
      const doc = r.Properties?.PolicyDocument as { Statement: Statement[] };
      for (const statement of doc.Statement) out.push({ owner: id, statement });
    }
  }
  return out;
}

export function list<T>(value: T | T[] | undefined): T[] {
  return value === undefined ? [] : Array.isArray(value) ? value : [value];
}

/**
 * What a role may do, as sorted `action resource` lines (one per pair, conditions appended), for
 * exact comparison: anything granted beyond the expected lines fails the test.
 */
export function grants(role: Resource, skipSids: readonly string[] = []): string[] {
  return roleStatements(role)
    .filter((s) => s.Effect === 'Allow' && !skipSids.includes(s.Sid ?? ''))
    .flatMap((s) =>
      list(s.Action as string | string[]).flatMap((a) =>
        list(s.Resource).map(
          (r) => `${a} ${render(r)}${s.Condition ? ` if ${JSON.stringify(s.Condition)}` : ''}`,
        ),
      ),
    )
    .sort();
}

/** The logical ids a resource depends on: DependsOn, Ref, Fn::GetAtt and Fn::Sub names. */
export function dependencies(resource: Resource, ids: ReadonlySet<string>): Set<string> {
  const deps = new Set<string>(list(resource.DependsOn));
  const visit = (v: unknown): void => {
    if (Array.isArray(v)) {
      v.forEach(visit);
      return;
    }
    if (v === null || typeof v !== 'object') return;
    const o = v as Record<string, unknown>;
    if (typeof o.Ref === 'string' && ids.has(o.Ref)) deps.add(o.Ref);
    const getAtt = o['Fn::GetAtt'];
    if (Array.isArray(getAtt) && ids.has(getAtt[0] as string)) deps.add(getAtt[0] as string);
    const sub = o['Fn::Sub'];
    const text = typeof sub === 'string' ? sub : Array.isArray(sub) ? (sub[0] as string) : undefined;
    for (const m of text?.matchAll(/\$\{([A-Za-z0-9]+)(?:\.[A-Za-z]+)?\}/g) ?? []) {
      if (ids.has(m[1] as string)) deps.add(m[1] as string);
    }
    Object.values(o).forEach(visit);
  };
  visit(resource.Properties);
  return deps;
}

/** A dependency cycle among the resources (CloudFormation refuses the stack), or undefined. */
export function findCycle(resources: Record<string, Resource>): string[] | undefined {
  const ids = new Set(Object.keys(resources));
  const graph = new Map([...ids].map((id) => [id, dependencies(resources[id] as Resource, ids)]));
  const state = new Map<string, 'visiting' | 'done'>();
  const path: string[] = [];
  const walk = (id: string): string[] | undefined => {
    if (state.get(id) === 'done') return undefined;
    if (state.get(id) === 'visiting') return [...path.slice(path.indexOf(id)), id];
    state.set(id, 'visiting');
    path.push(id);
    for (const dep of graph.get(id) ?? []) {
      const cycle = walk(dep);
      if (cycle) return cycle;
    }
    path.pop();
    state.set(id, 'done');
    return undefined;
  };
  for (const id of ids) {
    const cycle = walk(id);
    if (cycle) return cycle;
  }
  return undefined;
}

/**
 * A state machine's definition as serverless-step-functions wrote it (`Fn::Sub` with a hashed
 * placeholder per `Fn::GetAtt`), with each placeholder put back as the object it stands for.
 */
export function definitionOf(machine: Resource): unknown {
  const sub = (machine.Properties?.DefinitionString as { 'Fn::Sub': [string, Record<string, unknown>] })[
    'Fn::Sub'
  ];
  const [text, vars] = sub;
  let json = text;
  for (const [key, value] of Object.entries(vars))
    json = json.split(`"\${${key}}"`).join(JSON.stringify(value));
  return JSON.parse(json);
}

/** The logical ids of the functions a state machine definition invokes (`Fn::GetAtt [X, Arn]`). */
export function invokedFunctions(definition: unknown): string[] {
  const found = new Set<string>();
  const visit = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(visit);
    else if (v !== null && typeof v === 'object') {
      const getAtt = (v as Record<string, unknown>)['Fn::GetAtt'];
      if (Array.isArray(getAtt)) found.add(getAtt[0] as string);
      Object.values(v).forEach(visit);
    }
  };
  visit(definition);
  return [...found].sort();
}
