'use strict'
// The compiled addon (built by `node-gyp rebuild` when the workspace installs)
module.exports = require('./build/Release/leaf_hash.node')
