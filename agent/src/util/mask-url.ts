/**
 * Hides the credentials of URLs inside a text before it leaves the box or reaches a log: camera URLs
 * carry them (`rtsp://admin:secret@10.0.0.21/stream1`), and GStreamer quotes the URL or the whole
 * pipeline description in its error messages, which end up in telemetry (`lastError`) and the journal.
 */

/** scheme://userinfo@ — userinfo up to the last `@` before the host (a password with an unescaped `@` is common). */
const USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)[^\s/?#"'<>]*@/gi;
/** Credentials passed as query parameters (Dahua's `?user=admin&password=...`) or rtspsrc properties (`user-pw=...`). */
const PARAM = /\b(pass(?:word|wd)?|pwd|user-pw|proxy-pw|token|secret)=("[^"]*"|'[^']*'|[^\s&"']+)/gi;

/** `text` with every URL's user and password replaced by `***` and password parameters by `***`. */
export function maskUrlCredentials(text: string): string {
  return text.replace(USERINFO, '$1***@').replace(PARAM, '$1=***');
}
