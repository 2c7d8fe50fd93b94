/** Errors of @hearth/sync, each with a stable `code`. */
export class InvalidDocumentIdError extends Error {
  static readonly code = 'ERR_INVALID_DOCUMENT_ID'
  readonly code = InvalidDocumentIdError.code
  override readonly name = 'InvalidDocumentIdError'
}
