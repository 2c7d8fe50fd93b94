/**
 * Errors of @hearth/sync. Each has a stable `code`; callers and tests match
 * on `name` or `code`, never on the message. Everything a peer or a client
 * can provoke with bad input extends {@link SyncError}, so the HTTP layer can
 * map `instanceof SyncError` to a 4xx answer with `{ error: code }` and a
 * stream can answer with a doc error or a close.
 */
export abstract class SyncError extends Error {
  abstract readonly code: string
}

export class InvalidDocumentIdError extends SyncError {
  static readonly code = 'ERR_INVALID_DOCUMENT_ID'
  readonly code = InvalidDocumentIdError.code
  override readonly name = 'InvalidDocumentIdError'
}

/** No document with that id is stored here. (HTTP 404) */
export class DocumentNotFoundError extends SyncError {
  static readonly code = 'ERR_DOC_NOT_FOUND'
  readonly code = DocumentNotFoundError.code
  override readonly name = 'DocumentNotFoundError'
}

/** A document with that id already exists (create with an explicit id). (HTTP 409) */
export class DocumentExistsError extends SyncError {
  static readonly code = 'ERR_DOC_EXISTS'
  readonly code = DocumentExistsError.code
  override readonly name = 'DocumentExistsError'
}

/** The caller, device or agent may not read or write this document. (HTTP 403) */
export class AccessDeniedError extends SyncError {
  static readonly code = 'ERR_ACCESS_DENIED'
  readonly code = AccessDeniedError.code
  override readonly name = 'AccessDeniedError'
}

/** A change without a signature, with a bad one, or whose actor is not bound to its signer. (HTTP 400) */
export class InvalidChangeSignatureError extends SyncError {
  static readonly code = 'ERR_INVALID_SIGNATURE'
  readonly code = InvalidChangeSignatureError.code
  override readonly name = 'InvalidChangeSignatureError'
}

/** A validly signed change by a device the ACL does not allow to write. (HTTP 403) */
export class UnauthorizedWriterError extends SyncError {
  static readonly code = 'ERR_UNAUTHORIZED_WRITER'
  readonly code = UnauthorizedWriterError.code
  override readonly name = 'UnauthorizedWriterError'
}

/** A change larger than the change cap. (HTTP 413) */
export class ChangeTooLargeError extends SyncError {
  static readonly code = 'ERR_CHANGE_TOO_LARGE'
  readonly code = ChangeTooLargeError.code
  override readonly name = 'ChangeTooLargeError'
}

/** A message larger than the message cap, or carrying too many changes or ids. (HTTP 413) */
export class MessageTooLargeError extends SyncError {
  static readonly code = 'ERR_MESSAGE_TOO_LARGE'
  readonly code = MessageTooLargeError.code
  override readonly name = 'MessageTooLargeError'
}

/** Bytes that do not decode: a wire message, an Automerge sync message, change or document. (HTTP 400) */
export class MalformedMessageError extends SyncError {
  static readonly code = 'ERR_MALFORMED_MESSAGE'
  readonly code = MalformedMessageError.code
  override readonly name = 'MalformedMessageError'
}

/** A document header that does not parse, is not signed by the owner's device, or has an unsupported schema version. (HTTP 400) */
export class InvalidHeaderError extends SyncError {
  static readonly code = 'ERR_INVALID_HEADER'
  readonly code = InvalidHeaderError.code
  override readonly name = 'InvalidHeaderError'
}

/** A peer sent a sync message for a document neither side subscribed to in this session. */
export class NotSubscribedError extends SyncError {
  static readonly code = 'ERR_NOT_SUBSCRIBED'
  readonly code = NotSubscribedError.code
  override readonly name = 'NotSubscribedError'
}

/** A session already holds the most documents it may. */
export class TooManyDocumentsError extends SyncError {
  static readonly code = 'ERR_TOO_MANY_DOCUMENTS'
  readonly code = TooManyDocumentsError.code
  override readonly name = 'TooManyDocumentsError'
}

/** Content that is not a JSON object, or a change function that threw. (HTTP 400) */
export class InvalidContentError extends SyncError {
  static readonly code = 'ERR_INVALID_CONTENT'
  readonly code = InvalidContentError.code
  override readonly name = 'InvalidContentError'
}

/** The store or session was closed. */
export class ClosedError extends SyncError {
  static readonly code = 'ERR_CLOSED'
  readonly code = ClosedError.code
  override readonly name = 'ClosedError'
}
