'use strict'
// The compiled addon (built by `node-gyp rebuild` when the workspace installs)
module.exports = require('./build/Release/page_cache.node')
