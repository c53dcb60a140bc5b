import { MethodNotAllowedError, NotFoundError } from '../core/errors.js';

/** A route key `METHOD /path/{param}` as a method and a matcher for its path. */
interface KeyedRoute {
  method: string;
  pattern: RegExp;
}

/** Compiles API Gateway route keys; `{name}` matches one non-empty path segment, `{name+}` the rest. */
export function compileRouteKeys(keys: readonly string[]): KeyedRoute[] {
  return keys.flatMap((key) => {
    const [method, path] = key.split(' ');
    if (!method || !path?.startsWith('/')) return [];
    const source = path
      .split('/')
      .map((segment) => {
        if (/^\{[^}]+\+\}$/.test(segment)) return '.+';
        if (/^\{[^}]+\}$/.test(segment)) return '[^/]+';
        return segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      })
      .join('/');
    return [{ method, pattern: new RegExp(`^${source}$`) }];
  });
}

/**
 * The error for a request no route took: 405 naming the methods the path has (and an `allow`
 * header, RFC 9110) when the path is a route with other methods, else 404. API Gateway sends such
 * requests to the `$default` route, which serverless.yml gives to this function.
 */
export function unroutedError(routes: readonly KeyedRoute[], method: string, path: string): Error {
  const allowed = [...new Set(routes.filter((r) => r.pattern.test(path)).map((r) => r.method))].sort();
  if (allowed.length === 0) return new NotFoundError(`no route for ${method} ${path}`);
  if (allowed.includes(method)) {
    // A declared route that API Gateway did not route here: the route table and serverless.yml differ.
    return new NotFoundError(`no route for ${method} ${path}`);
  }
  return new MethodNotAllowedError(`${method} is not allowed on ${path}; allowed: ${allowed.join(', ')}`, {
    details: { method, path, allow: allowed },
    headers: { allow: allowed.join(', ') },
  });
}
