/**
 * A throwaway CA and a server certificate for 127.0.0.1/localhost, made with the openssl CLI (Node
 * has no certificate-issuing API). Used to test TLS with a pinned CA.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface TestCerts {
  caPem: string;
  caPath: string;
  certPath: string;
  keyPath: string;
}

export function makeTestCerts(dir: string, name = 'ca'): TestCerts {
  const p = (f: string) => join(dir, `${name}-${f}`);
  const run = (args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
  run(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-subj', `/CN=Edge Fleet test ${name}`, '-keyout', p('ca.key'), '-out', p('ca.pem')]);
  run(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', '/CN=localhost', '-keyout', p('server.key'), '-out', p('server.csr')]);
  writeFileSync(p('ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n');
  run(['x509', '-req', '-in', p('server.csr'), '-CA', p('ca.pem'), '-CAkey', p('ca.key'), '-CAcreateserial', '-days', '2', '-extfile', p('ext.cnf'), '-out', p('server.pem')]);
  return { caPem: readFileSync(p('ca.pem'), 'utf8'), caPath: p('ca.pem'), certPath: p('server.pem'), keyPath: p('server.key') };
}
