import type { Connection, PeerId, Stream } from '@libp2p/interface'

/**
 * Strikes peers that send junk on the DHT protocol. @libp2p/kad-dht refuses
 * such input itself (it aborts the stream) but tells no one, so a peer could
 * spray undecodable or unknown messages forever at no cost. There is no hook
 * for it: this wraps the DHT's inbound RPC object (`rpc.onIncomingStream`
 * and `rpc.handleMessage`, kad-dht 16) before the host starts, when kad-dht
 * registers its handler. If a kad-dht release moves them, `watchDhtJunk`
 * returns false and the daemon says so at start; the DHT test fails.
 */
export function watchDhtJunk (dht: unknown, onJunk: (peer: PeerId, reason: string) => void): boolean {
  const rpc = (dht as { rpc?: Rpc } | undefined)?.rpc
  if (rpc == null || typeof rpc.onIncomingStream !== 'function' || typeof rpc.handleMessage !== 'function') return false
  const incoming = rpc.onIncomingStream.bind(rpc)
  const handle = rpc.handleMessage.bind(rpc)
  rpc.handleMessage = async (peer, msg) => {
    try {
      return await handle(peer, msg)
    } catch (err: any) {
      // a message that decoded but that the DHT refuses: an unknown type, a bad key or record
      if (refusedInput(err)) onJunk(peer, `dht: ${String(err?.name ?? 'refused')} ${String(err?.message ?? '').slice(0, 80)}`)
      throw err
    }
  }
  rpc.onIncomingStream = async (stream, conn) => {
    try {
      await incoming(stream, conn)
    } catch (err: any) {
      // bytes that do not decode as a DHT message, or announce one beyond its cap
      if (undecodable(err)) onJunk(conn.remotePeer, `dht: ${String(err?.name ?? 'undecodable')}`)
      throw err
    }
  }
  return true
}

interface Rpc {
  onIncomingStream: (stream: Stream, conn: Connection) => Promise<void>
  handleMessage: (peer: PeerId, msg: unknown) => Promise<unknown>
}

/** errors of a message the DHT decoded and then refused, as opposed to its own trouble (a datastore failure) */
function refusedInput (err: any): boolean {
  return ['InvalidMessageError', 'InvalidParametersError', 'InvalidRecordError'].includes(err?.name)
}

/** errors of reading a frame that is not one: protobuf decoding and length-prefix errors, not timeouts or resets */
function undecodable (err: any): boolean {
  const name = String(err?.name ?? '')
  if (['TimeoutError', 'AbortError', 'StreamResetError', 'StreamAbortedError', 'StreamStateError', 'UnexpectedEOFError', 'StreamClosedError'].includes(name)) return false
  return ['InvalidDataLengthError', 'InvalidDataLengthLengthError', 'InvalidMessageLengthError', 'RangeError', 'InvalidMessageError'].includes(name) ||
    /wire type|illegal tag|index out of range|invalid enum|invalid utf|varint/i.test(String(err?.message ?? ''))
}
