#!/usr/bin/env node
// The polyfill must run before libp2p is loaded, hence the dynamic import.
import './polyfill.js'

const { main } = await import('./cli/index.js')
const code = await main(process.argv.slice(2))
process.exitCode = code
