import { EdgeFleetError } from '../util/errors.js';

/** An install step refused or failed; `code` is what the agent reports (E_SIGNATURE, E_SHA256, E_TRUNCATED, E_TARGET, E_SELF_TEST, E_HEALTH, ...). */
export class OtaError extends EdgeFleetError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/**
 * errno codes of a fault of this box, not of the model being installed: a full disk (ENOSPC), a quota
 * (EDQUOT), an I/O error or a file system remounted read-only after one (EIO, EROFS), a store the
 * service user cannot write (EACCES, EPERM), too many open files (EMFILE, ENFILE), no memory (ENOMEM).
 * An install that fails with one is reported and tried again, never remembered as a refusal of the version.
 */
export const LOCAL_FAULT_CODES: ReadonlySet<string> = new Set(['ENOSPC', 'EDQUOT', 'EIO', 'EROFS', 'EACCES', 'EPERM', 'EMFILE', 'ENFILE', 'ENOMEM']);

export function isLocalFault(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' && LOCAL_FAULT_CODES.has(code);
}
