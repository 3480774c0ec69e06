/**
 * The dashboard's session cookie: the same operator token POST /api/login returns, carried as an
 * HttpOnly cookie so page scripts never see it (XSS cannot read it) and SameSite=Strict so another
 * site cannot make the browser send it (no cross-site request forgery; RFC 6265bis §5.4.7).
 * `Secure` is added when the request came over TLS (directly or via a proxy's x-forwarded-proto).
 */
export const SESSION_COOKIE = 'ef_session';

/** The session token from a Cookie header (RFC 6265 §4.2.1: `name=value; name2=value2`). */
export function sessionFromCookie(header: string | undefined): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === SESSION_COOKIE) {
      const v = part.slice(eq + 1).trim();
      return v.length > 0 && /^[A-Za-z0-9_-]+$/.test(v) ? v : undefined;
    }
  }
  return undefined;
}

export function sessionCookie(token: string, opts: { maxAgeS: number; secure: boolean }): string {
  return `${SESSION_COOKIE}=${token}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${Math.max(0, Math.floor(opts.maxAgeS))}${opts.secure ? '; Secure' : ''}`;
}

export function clearedSessionCookie(secure: boolean): string {
  return sessionCookie('', { maxAgeS: 0, secure });
}
