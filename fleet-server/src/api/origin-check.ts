/**
 * Cross-origin refusal for requests that change state on the strength of the dashboard's session
 * cookie. SameSite=Strict keeps the cookie from other *sites*, but not from another origin of the
 * same site (another port of the same host, a sibling subdomain: RFC 6265bis §5.2 "same-site"), so
 * a page there could post to the API with the operator's session. Such a request is refused unless
 * its Origin (else its Referer) is the server's own origin.
 *
 * What passes untouched: GET/HEAD/OPTIONS (no state changes); a request with a bearer token
 * (fleetctl and scripts: a browser cannot add that header across origins without a CORS preflight,
 * which this server never grants); a request without the session cookie (nothing ambient to abuse;
 * the auth check answers it). Browsers send Origin on every fetch() POST/PUT/DELETE, same-origin
 * included, whatever the page's Referrer-Policy (Fetch standard, "append a request Origin header":
 * only no-cors requests such as form posts turn it into `null` under `no-referrer`).
 */
import type { FastifyRequest } from 'fastify';
import { sessionFromCookie } from '../dashboard/session-cookie.js';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** The first value of a header that a proxy may have sent as a list (`a, b`). */
function firstValue(v: string | string[] | undefined): string | undefined {
  const s = Array.isArray(v) ? v[0] : v;
  const first = s?.split(',')[0]?.trim();
  return first ? first : undefined;
}

/** `scheme://host[:port]` normalised (default port dropped, lower case), or undefined when it is not a URL. */
function originOf(url: string): string | undefined {
  try {
    const u = new URL(url);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.origin : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The origins the server answers as: its Host (or a proxy's X-Forwarded-Host) with the request's
 * scheme (or a proxy's X-Forwarded-Proto), plus `allowedOrigins` (a proxy that sets neither). The
 * forwarded headers are safe to believe here: a cross-origin page cannot set them without a preflight.
 *
 * A request that reached the server over plain http with no X-Forwarded-Proto also answers as https
 * for the same host (and port, where the header names one): a TLS proxy that does not send the header (Apache's ProxyPass, HAProxy,
 * by default) passes on the browser's `Origin: https://H`, and the server, seeing http, took its own
 * origin for http://H and refused every dashboard action. What this check guards is the host and
 * port a page came from; a page can only claim the https origin of a host it is served from, and
 * a page served over https cannot fetch() an http URL at all (Mixed Content, "blockable" requests).
 */
function ownOrigins(req: FastifyRequest, allowedOrigins: readonly string[]): Set<string> {
  const forwardedProto = firstValue(req.headers['x-forwarded-proto']);
  const protos = forwardedProto !== undefined ? [forwardedProto] : req.protocol === 'http' ? ['http', 'https'] : [req.protocol];
  const out = new Set<string>();
  for (const host of [firstValue(req.headers['x-forwarded-host']), firstValue(req.headers.host)]) {
    for (const proto of protos) {
      const o = host && originOf(`${proto}://${host}`);
      if (o) out.add(o);
    }
  }
  for (const a of allowedOrigins) {
    const o = originOf(a);
    if (o) out.add(o);
  }
  return out;
}

/** Why this request is refused as cross-origin (a 403's message), or undefined when it may go on. */
export function crossOriginRefusal(req: FastifyRequest, allowedOrigins: readonly string[] = []): string | undefined {
  if (SAFE_METHODS.has(req.method)) return undefined;
  if ((req.headers.authorization ?? '').startsWith('Bearer ')) return undefined;
  if (sessionFromCookie(req.headers.cookie) === undefined) return undefined;
  const origin = firstValue(req.headers.origin);
  const referer = firstValue(req.headers.referer);
  const own = ownOrigins(req, allowedOrigins);
  const fix = 'Use the dashboard from the server\'s own address, send the operator token as Authorization: Bearer, or list the public address in http.allowedOrigins (behind a proxy that changes the Host header).';
  if (origin !== undefined && origin !== 'null') {
    const o = originOf(origin);
    if (o && own.has(o)) return undefined;
    return `${req.method} ${req.url} with the session cookie came from the page at ${origin}, not from this server (${[...own].join(', ') || 'no Host header'}); refused as cross-origin. ${fix}`;
  }
  if (origin === undefined && referer !== undefined) {
    const o = originOf(referer);
    if (o && own.has(o)) return undefined;
    return `${req.method} ${req.url} with the session cookie came from the page at ${o ?? 'an unreadable Referer'}, not from this server (${[...own].join(', ') || 'no Host header'}); refused as cross-origin. ${fix}`;
  }
  return `${req.method} ${req.url} with the session cookie has ${origin === 'null' ? 'Origin: null' : 'neither Origin nor Referer'}, so it cannot be told from a cross-origin request; refused. ${fix}`;
}
