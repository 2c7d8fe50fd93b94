import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import type { NodeStore } from '../node-store.js'

/** What a token may do: `read` every GET; `write` also add, pin and edit; `admin` also trust, tokens, peers and gc. */
export const SCOPES = ['read', 'write', 'admin'] as const
export type Scope = typeof SCOPES[number]
/** What a request may do: a scope, or `none` without a valid token */
export type Access = Scope | 'none'

const RANK: Record<Access, number> = { none: 0, read: 1, write: 2, admin: 3 }

/** Whether `access` includes `needed` */
export function allows (access: Access, needed: Access): boolean {
  return RANK[access] >= RANK[needed]
}

export interface TokenView {
  id: string
  name: string
  scope: Scope
  created_at: string
  last_used_at: string | null
}

const PREFIX = 'hearth_'
const MAX_TOKENS = 256
/** a token's last use is written at most this often, ms */
const TOUCH_MS = 60_000

const sha256 = (s: string | Buffer): Buffer => createHash('sha256').update(s).digest()

/**
 * Scoped API tokens, kept in node.db with only the SHA-256 of their secret.
 * A token reads `hearth_<id>_<secret>`: the id finds the row, the secret is
 * compared in constant time. The daemon's own token (`$HEARTH_DATA/api-token`
 * or HEARTH_API_TOKEN) is the admin token and is not listed here.
 */
export class ApiTokens {
  private byId = new Map<string, { name: string, scope: Scope, hash: Buffer, createdAt: number, lastUsedAt?: number }>()
  private readonly touched = new Map<string, number>()
  private readonly adminHash: Buffer

  constructor (private readonly store: NodeStore, adminToken: string) {
    this.adminHash = sha256(adminToken)
    this.reload()
  }

  private reload (): void {
    this.byId = new Map(this.store.tokens()
      .filter((t): t is typeof t & { scope: Scope } => (SCOPES as readonly string[]).includes(t.scope))
      .map(t => [t.id, { name: t.name, scope: t.scope, hash: Buffer.from(t.secretHash, 'hex'), createdAt: t.createdAt, lastUsedAt: t.lastUsedAt }]))
  }

  /** Makes a token; its text is returned this once and never stored */
  create (name: string, scope: Scope): { token: string, view: TokenView } {
    if (this.byId.size >= MAX_TOKENS) throw new TooManyTokensError(`at most ${MAX_TOKENS} tokens; revoke one first`)
    const id = randomBytes(6).toString('hex')
    const secret = randomBytes(32).toString('base64url')
    const createdAt = Date.now()
    this.store.addToken({ id, name, scope, secretHash: sha256(secret).toString('hex'), createdAt })
    this.reload()
    return { token: `${PREFIX}${id}_${secret}`, view: this.view(id)! }
  }

  list (): TokenView[] {
    return [...this.byId.keys()].map(id => this.view(id)!)
  }

  revoke (id: string): boolean {
    const gone = this.store.deleteToken(id)
    this.reload()
    return gone
  }

  /**
   * What a presented token may do: `admin` for the daemon's own token, the
   * scope of a listed one, `none` for anything else. `id` names the token
   * (`admin` for the daemon's), for rate limits and logs.
   */
  check (given: string): { access: Access, id?: string } {
    if (given.length === 0 || given.length > 1024) return { access: 'none' }
    const hash = sha256(given)
    if (timingSafeEqual(hash, this.adminHash)) return { access: 'admin', id: 'admin' }
    const m = /^hearth_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$/.exec(given)
    const entry = m == null ? undefined : this.byId.get(m[1])
    if (m == null || entry == null) return { access: 'none' }
    if (!timingSafeEqual(sha256(m[2]), entry.hash)) return { access: 'none' }
    const now = Date.now()
    if (now - (this.touched.get(m[1]) ?? 0) > TOUCH_MS) {
      this.touched.set(m[1], now)
      entry.lastUsedAt = now
      try { this.store.touchToken(m[1], now) } catch { /* a full disk must not refuse a valid token */ }
    }
    return { access: entry.scope, id: m[1] }
  }

  private view (id: string): TokenView | undefined {
    const e = this.byId.get(id)
    if (e == null) return undefined
    return { id, name: e.name, scope: e.scope, created_at: new Date(e.createdAt).toISOString(), last_used_at: e.lastUsedAt != null ? new Date(e.lastUsedAt).toISOString() : null }
  }
}

export class TooManyTokensError extends Error {
  static readonly code = 'ERR_TOO_MANY_TOKENS'
  readonly code = TooManyTokensError.code
}
