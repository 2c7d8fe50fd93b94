/**
 * Errors of the daemon. Each has a stable `code`; the HTTP error handler maps
 * codes to statuses and the CLI maps them to exit codes.
 */
export class ConfigError extends Error {
  static readonly code = 'ERR_INVALID_CONFIG'
  readonly code = ConfigError.code
  override readonly name = 'ConfigError'
  /** the flag, variable or file key at fault, as the user wrote it */
  readonly key: string

  constructor (key: string, message: string) {
    super(`${key}: ${message}`)
    this.key = key
  }
}

export class NotReadyError extends Error {
  static readonly code = 'ERR_NOT_READY'
  readonly code = NotReadyError.code
  override readonly name = 'NotReadyError'
}

export class P2PDisabledError extends Error {
  static readonly code = 'ERR_P2P_DISABLED'
  readonly code = P2PDisabledError.code
  override readonly name = 'P2PDisabledError'
}

export class InvalidMultiaddrError extends Error {
  static readonly code = 'ERR_INVALID_MULTIADDR'
  readonly code = InvalidMultiaddrError.code
  override readonly name = 'InvalidMultiaddrError'
}

export class InvalidPeerIdError extends Error {
  static readonly code = 'ERR_INVALID_PEER_ID'
  readonly code = InvalidPeerIdError.code
  override readonly name = 'InvalidPeerIdError'
}

export class DialFailedError extends Error {
  static readonly code = 'ERR_DIAL_FAILED'
  readonly code = DialFailedError.code
  override readonly name = 'DialFailedError'
}

export class PeerNotConnectedError extends Error {
  static readonly code = 'ERR_PEER_NOT_CONNECTED'
  readonly code = PeerNotConnectedError.code
  override readonly name = 'PeerNotConnectedError'
}

export class DaemonAlreadyRunningError extends Error {
  static readonly code = 'ERR_DAEMON_RUNNING'
  readonly code = DaemonAlreadyRunningError.code
  override readonly name = 'DaemonAlreadyRunningError'
}

export class NoAgentKeyError extends Error {
  static readonly code = 'ERR_NO_AGENT_KEY'
  readonly code = NoAgentKeyError.code
  override readonly name = 'NoAgentKeyError'
}

export class AlreadyJoinedError extends Error {
  static readonly code = 'ERR_ALREADY_JOINED'
  readonly code = AlreadyJoinedError.code
  override readonly name = 'AlreadyJoinedError'
}

export class InvitationRejectedError extends Error {
  static readonly code = 'ERR_INVITATION_REJECTED'
  readonly code = InvitationRejectedError.code
  override readonly name = 'InvitationRejectedError'
}

export class PairingFailedError extends Error {
  static readonly code = 'ERR_PAIRING_FAILED'
  readonly code = PairingFailedError.code
  override readonly name = 'PairingFailedError'
}

export class AgentNotFoundError extends Error {
  static readonly code = 'ERR_AGENT_NOT_FOUND'
  readonly code = AgentNotFoundError.code
  override readonly name = 'AgentNotFoundError'
}

/** The libp2p host could not listen: its port is taken (the message names the setting to change) */
export class P2pPortInUseError extends Error {
  static readonly code = 'ERR_P2P_PORT_IN_USE'
  readonly code = P2pPortInUseError.code
  override readonly name = 'P2pPortInUseError'
}

export class DataDirError extends Error {
  static readonly code = 'ERR_DATA_DIR'
  readonly code = DataDirError.code
  override readonly name = 'DataDirError'
}

/** documents need an agent to own them: this device acts for none yet */
export class NoAgentError extends Error {
  static readonly code = 'ERR_NO_AGENT'
  readonly code = NoAgentError.code
  override readonly name = 'NoAgentError'
}

/** a document this node lacks was asked of its peers, and none gave it in time */
export class DocFetchTimeoutError extends Error {
  static readonly code = 'ERR_FETCH_TIMEOUT'
  readonly code = DocFetchTimeoutError.code
  override readonly name = 'DocFetchTimeoutError'
}

/** too many change streams or automerge-repo sockets are open */
export class TooManyStreamsError extends Error {
  static readonly code = 'ERR_TOO_MANY_STREAMS'
  readonly code = TooManyStreamsError.code
  override readonly name = 'TooManyStreamsError'
}
