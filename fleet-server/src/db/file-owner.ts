/**
 * Files fleetctl writes into the server's data dir keep the server's ownership when fleetctl runs as
 * root (`sudo fleetctl model publish ... --data-dir /var/lib/edge-fleet`): the server runs as its own
 * user (configs/systemd/fleet-server.service, User=edge-fleet) and could neither open a database,
 * read an artifact nor load a signing key that root had made. Only root can give a file away, and
 * only root needs to: as any other user these do nothing.
 */
import { chownSync, existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

export interface FileOwner {
  uid: number;
  gid: number;
}

/**
 * Who should own what is made at `path` when running as root: the owner of `path`, or of its
 * nearest existing parent for a path still to be made (a new data dir under /var/lib: root); undefined
 * when not running as root.
 */
export function ownerForRoot(path: string): FileOwner | undefined {
  if (process.getuid?.() !== 0) return undefined;
  let p = path;
  while (!existsSync(p) && dirname(p) !== p) p = dirname(p);
  const st = statSync(p);
  return { uid: st.uid, gid: st.gid };
}

/** Gives each of `paths` that exists to `owner` where it has another (none when `owner` is undefined). */
export function giveTo(owner: FileOwner | undefined, ...paths: string[]): void {
  if (!owner) return;
  for (const f of paths) {
    let st;
    try {
      st = statSync(f);
    } catch {
      continue; // not made (yet)
    }
    if (st.uid !== owner.uid || st.gid !== owner.gid) chownSync(f, owner.uid, owner.gid);
  }
}

/** `mkdir -p dir`, giving every directory it made to `owner`. */
export function mkdirFor(owner: FileOwner | undefined, dir: string, mode?: number): void {
  const first = mkdirSync(dir, { recursive: true, mode });
  if (!owner || first === undefined) return;
  // mkdirSync returns the first directory it made (the topmost): every one from there down to dir is new.
  const top = resolve(first);
  const made: string[] = [];
  for (let p = resolve(dir); ; p = dirname(p)) {
    made.push(p);
    if (p === top || dirname(p) === p) break;
  }
  giveTo(owner, ...made);
}
