/**
 * A real sd_notify socket for tests: python3 binds an AF_UNIX SOCK_DGRAM socket (Node cannot) and
 * prints each datagram with the sender PID from SCM_CREDENTIALS, as systemd reads it.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { waitFor } from './wait.js';

const LISTENER = `
import socket, sys, json, time, struct
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
s.bind(sys.argv[1])
print(json.dumps({"listening": True}), flush=True)
while True:
    msg, anc, flags, addr = s.recvmsg(4096, socket.CMSG_SPACE(12))
    pid = None
    for level, typ, data in anc:
        if level == socket.SOL_SOCKET and typ == socket.SCM_CREDENTIALS:
            pid = struct.unpack("iII", data[:12])[0]
    print(json.dumps({"t": time.monotonic(), "pid": pid, "msg": msg.decode()}), flush=True)
`;

export interface Datagram { t: number; pid: number | null; msg: string }

export interface NotifyListener {
  socketPath: string;
  datagrams(): Datagram[];
  stop(): void;
}

/** Why a listener cannot run here, or undefined when it can. */
export function notifyListenerUnavailable(): string | undefined {
  return spawnSync('python3', ['-c', 'import socket; socket.SCM_CREDENTIALS'], { stdio: 'ignore' }).status === 0
    ? undefined : 'python3 with socket.SCM_CREDENTIALS is needed for the notify-socket listener';
}

export async function startNotifyListener(): Promise<NotifyListener> {
  const dir = mkdtempSync(join(tmpdir(), 'ef-notify-'));
  const socketPath = join(dir, 'notify');
  const child = spawn('python3', ['-c', LISTENER, socketPath], { stdio: ['ignore', 'pipe', 'inherit'] });
  const raw: string[] = [];
  createInterface({ input: child.stdout }).on('line', (l) => raw.push(l));
  await waitFor('the notify listener', () => raw.length > 0, 10_000);
  return {
    socketPath,
    datagrams: () => raw.map((l) => JSON.parse(l) as Datagram & { listening?: boolean }).filter((d) => !d.listening),
    stop: () => {
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
