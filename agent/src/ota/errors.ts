import { EdgeFleetError } from '../util/errors.js';

/** An install step refused or failed; `code` is what the agent reports (E_SIGNATURE, E_SHA256, E_TRUNCATED, E_TARGET, E_SELF_TEST, E_HEALTH, ...). */
export class OtaError extends EdgeFleetError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
