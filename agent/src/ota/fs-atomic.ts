/**
 * Crash-safe file writes: write a temp file, fsync it, rename over the target, fsync the directory
 * (rename is atomic on POSIX file systems; the directory fsync makes the new entry durable —
 * rename(2), fsync(2) "Calling fsync() does not necessarily ensure that the entry in the directory
 * containing the file has also reached disk").
 */
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

export function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Writes all of `buf` at the end of `fd`, or throws: write(2) may write fewer bytes than asked (a
 * nearly full disk), and the error that stops the rest (ENOSPC, EFBIG) is thrown. Whatever was written
 * stays: a partial download's length is its resume point, so a short write never shifts what follows.
 */
export function writeAll(fd: number, buf: Uint8Array): void {
  for (let off = 0; off < buf.length;) {
    const n = writeSync(fd, buf, off, buf.length - off);
    if (n <= 0) throw Object.assign(new Error(`cannot write: wrote 0 of the ${buf.length - off} bytes left`), { code: 'EIO' });
    off += n;
  }
}

/**
 * Writes `data` to `path` whole or not at all. write(2) may write fewer bytes than asked (a nearly
 * full disk, a file-size limit): the rest is written in a loop, and the error that ends it (ENOSPC,
 * EFBIG) is thrown with the temp file removed, so a short file is never renamed over a good one.
 */
export function writeFileAtomic(path: string, data: string | Buffer): void {
  const tmp = `${path}.${process.pid}.tmp`;
  const buf = typeof data === 'string' ? Buffer.from(data) : data;
  const fd = openSync(tmp, 'w', 0o644);
  try {
    writeAll(fd, buf);
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw err;
  }
  closeSync(fd);
  renameSync(tmp, path);
  fsyncDir(dirname(path));
}
