import * as ed from '@noble/ed25519'
import { sha512 } from '@noble/hashes/sha2.js'

// noble-ed25519 leaves the synchronous SHA-512 to the caller; wiring it once
// here lets every signer and verifier use the sync API, which is several
// times faster than going through WebCrypto for small messages.
ed.hashes.sha512 = sha512

export { ed }
