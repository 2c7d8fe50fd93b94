/**
 * Errors of @hearth/trust. Each has a stable `code`; callers and tests match
 * on `name` or `code`, never on the message. Every error a peer or client can
 * provoke with bad input extends {@link TrustError}, so the HTTP layer can map
 * `instanceof TrustError` to a 4xx answer with `{ error: code }`.
 */
export abstract class TrustError extends Error {
  abstract readonly code: string
}

export class InvalidKeyFileError extends TrustError {
  static readonly code = 'ERR_INVALID_KEY_FILE'
  readonly code = InvalidKeyFileError.code
  override readonly name = 'InvalidKeyFileError'
}

/** An agent, device or key id string that is not a base58btc ed25519-pub multikey. */
export class InvalidIdError extends TrustError {
  static readonly code = 'ERR_INVALID_ID'
  readonly code = InvalidIdError.code
  override readonly name = 'InvalidIdError'
}

/** The wire bytes exceed the size cap. */
export class StatementTooLargeError extends TrustError {
  static readonly code = 'ERR_STATEMENT_TOO_LARGE'
  readonly code = StatementTooLargeError.code
  override readonly name = 'StatementTooLargeError'
}

/** Not dag-cbor, or not the envelope/statement shape: a missing field, a wrongly typed or unknown one. */
export class MalformedStatementError extends TrustError {
  static readonly code = 'ERR_MALFORMED_STATEMENT'
  readonly code = MalformedStatementError.code
  override readonly name = 'MalformedStatementError'
}

/** Decodable, but not the canonical dag-cbor encoding of its own value. */
export class NonCanonicalEncodingError extends TrustError {
  static readonly code = 'ERR_NON_CANONICAL'
  readonly code = NonCanonicalEncodingError.code
  override readonly name = 'NonCanonicalEncodingError'
}

/** `schema_version` names a major version this library does not know. */
export class UnsupportedSchemaVersionError extends TrustError {
  static readonly code = 'ERR_UNSUPPORTED_SCHEMA_VERSION'
  readonly code = UnsupportedSchemaVersionError.code
  override readonly name = 'UnsupportedSchemaVersionError'
}

export class UnknownStatementTypeError extends TrustError {
  static readonly code = 'ERR_UNKNOWN_STATEMENT_TYPE'
  readonly code = UnknownStatementTypeError.code
  override readonly name = 'UnknownStatementTypeError'
}

/** The signature does not verify under the issuer's key (or a rotation's proof does not verify under the new key). */
export class InvalidSignatureError extends TrustError {
  static readonly code = 'ERR_INVALID_SIGNATURE'
  readonly code = InvalidSignatureError.code
  override readonly name = 'InvalidSignatureError'
}

/** The signature is valid, but over another statement type's domain tag. */
export class WrongDomainError extends TrustError {
  static readonly code = 'ERR_WRONG_DOMAIN'
  readonly code = WrongDomainError.code
  override readonly name = 'WrongDomainError'
}

export class StatementExpiredError extends TrustError {
  static readonly code = 'ERR_STATEMENT_EXPIRED'
  readonly code = StatementExpiredError.code
  override readonly name = 'StatementExpiredError'
}

/** `issued_at` lies further in the future than the allowed clock skew. */
export class StatementNotYetValidError extends TrustError {
  static readonly code = 'ERR_STATEMENT_NOT_YET_VALID'
  readonly code = StatementNotYetValidError.code
  override readonly name = 'StatementNotYetValidError'
}

/** A device whose live certificates have all been revoked by their agents. */
export class KeyRevokedError extends TrustError {
  static readonly code = 'ERR_KEY_REVOKED'
  readonly code = KeyRevokedError.code
  override readonly name = 'KeyRevokedError'
}

/** Issued by a key at or after the time that key was rotated away. */
export class KeyRotatedError extends TrustError {
  static readonly code = 'ERR_KEY_ROTATED'
  readonly code = KeyRotatedError.code
  override readonly name = 'KeyRotatedError'
}

/** The device has no certificate from any agent (or only expired ones). */
export class DeviceNotCertifiedError extends TrustError {
  static readonly code = 'ERR_DEVICE_NOT_CERTIFIED'
  readonly code = DeviceNotCertifiedError.code
  override readonly name = 'DeviceNotCertifiedError'
}
