/**
 * Errors of @hearth/trust. Each has a stable `code`; callers and tests match
 * on `name` or `code`, never on the message.
 */
export class InvalidKeyFileError extends Error {
  static readonly code = 'ERR_INVALID_KEY_FILE'
  readonly code = InvalidKeyFileError.code
  override readonly name = 'InvalidKeyFileError'
}
