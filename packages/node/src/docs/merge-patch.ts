/**
 * JSON Merge Patch (RFC 7396) applied to an Automerge document inside a
 * change: objects merge key by key, `null` deletes a key, anything else
 * (arrays included) replaces the value. It lets an HTTP client without
 * Automerge edit a document; concurrent patches to different keys merge.
 */
export class InvalidPatchError extends Error {
  static readonly code = 'ERR_INVALID_PATCH'
  readonly code = InvalidPatchError.code
  override readonly name = 'InvalidPatchError'
}

const MAX_DEPTH = 64
const MAX_KEY_LENGTH = 4096

function isObject (v: unknown): v is Record<string, unknown> {
  return v != null && typeof v === 'object' && !Array.isArray(v)
}

/** Checks a patch before any of it is applied, so a bad one changes nothing. */
export function validatePatch (patch: unknown): asserts patch is Record<string, unknown> {
  if (!isObject(patch)) throw new InvalidPatchError('a merge patch must be a JSON object')
  const walk = (v: unknown, depth: number): void => {
    if (depth > MAX_DEPTH) throw new InvalidPatchError(`a merge patch nests at most ${MAX_DEPTH} levels`)
    if (Array.isArray(v)) {
      for (const x of v) walk(x, depth + 1)
    } else if (isObject(v)) {
      for (const [k, x] of Object.entries(v)) {
        if (k.length > MAX_KEY_LENGTH) throw new InvalidPatchError(`keys are at most ${MAX_KEY_LENGTH} characters`)
        walk(x, depth + 1)
      }
    } else if (typeof v === 'number' && !Number.isFinite(v)) {
      throw new InvalidPatchError('numbers must be finite')
    }
  }
  walk(patch, 0)
}

/** `null`s inside a value that is newly set mean nothing (RFC 7396 §2): drop them. */
function withoutNulls (v: unknown): unknown {
  if (Array.isArray(v)) return v.map(withoutNulls)
  if (!isObject(v)) return v
  const out: Record<string, unknown> = {}
  for (const [k, x] of Object.entries(v)) if (x !== null) out[k] = withoutNulls(x)
  return out
}

/** Applies a validated patch to `target`, an Automerge map proxy inside `store.change`. */
export function applyMergePatch (target: Record<string, unknown>, patch: Record<string, unknown>): void {
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) {
      if (Object.prototype.hasOwnProperty.call(target, key)) delete target[key]
      continue
    }
    const current = Object.prototype.hasOwnProperty.call(target, key) ? target[key] : undefined
    if (isObject(value) && isObject(current) && !(current instanceof Date) && !(current instanceof Uint8Array)) {
      applyMergePatch(current, value)
    } else {
      target[key] = withoutNulls(value)
    }
  }
}
