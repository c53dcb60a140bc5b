import { Sha256 } from '@aws-crypto/sha256-js';
import { defaultProvider } from '@aws-sdk/credential-provider-node';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';

/**
 * A fetch for a deployed API: with a bearer token (the API's JWT mode) it adds the header;
 * otherwise it signs each request with SigV4 for execute-api (the API's default IAM mode), with
 * credentials from the usual AWS chain (environment, profile, SSO, instance role).
 */
export function apiFetch(region: string, token?: string): typeof fetch {
  if (token) {
    return (input, init) =>
      fetch(input, {
        ...init,
        headers: { ...(init?.headers as Record<string, string>), authorization: `Bearer ${token}` },
      });
  }
  return sigV4Fetch('execute-api', region);
}

/**
 * A fetch that signs each request with SigV4 for one AWS service and region, credentials from the
 * usual AWS chain (environment, profile, SSO, instance role).
 */
export function sigV4Fetch(service: string, region: string, fetcher: typeof fetch = fetch): typeof fetch {
  const signer = new SignatureV4({ service, region, credentials: defaultProvider(), sha256: Sha256 });
  return async (input, init) => {
    const url = new URL(String(input));
    const request = new HttpRequest({
      method: init?.method ?? 'GET',
      protocol: url.protocol,
      hostname: url.hostname,
      port: url.port ? Number(url.port) : undefined,
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      headers: { host: url.host, ...(init?.headers as Record<string, string>) },
      body: init?.body,
    });
    const signed = await signer.sign(request);
    return fetcher(url, { ...init, headers: signed.headers });
  };
}
