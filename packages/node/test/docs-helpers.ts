import assert from 'node:assert/strict'
import type { DaemonProc } from './helpers.js'

/** HTTP helpers for the document tests against real daemons */
export async function call (d: DaemonProc, method: string, path: string, body?: unknown, type = 'application/json'): Promise<any> {
  const res = await fetch(d.url + path, {
    method,
    headers: { authorization: `Bearer ${d.token}`, ...(body !== undefined ? { 'content-type': type } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body)
  })
  const text = await res.text()
  assert.ok(res.status < 300, `${method} ${path}: ${res.status} ${text}`)
  return text.length > 0 ? JSON.parse(text) : undefined
}

export const view = async (d: DaemonProc, id: string): Promise<any> => {
  const res = await fetch(`${d.url}/cache/docs/${id}`, { headers: { authorization: `Bearer ${d.token}` } })
  return res.status === 200 ? await res.json() : undefined
}

export const tcpAddr = async (d: DaemonProc): Promise<string> =>
  (await d.get('/p2p/status')).body.addresses.find((a: string) => a.includes('/tcp/') && !a.includes('/ws'))

export async function connect (a: DaemonProc, b: DaemonProc): Promise<void> {
  await call(a, 'POST', '/p2p/connect', { addr: await tcpAddr(b) })
}

/** agents that know each other: each relates to the other, and each learns the other's statements */
export async function befriend (a: DaemonProc, b: DaemonProc, aAgent: string, bAgent: string): Promise<void> {
  await call(a, 'POST', '/trust/relationships', { agent: bAgent, kind: 'family' })
  await call(b, 'POST', '/trust/relationships', { agent: aAgent, kind: 'family' })
}

