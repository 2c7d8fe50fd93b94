import './polyfill.js'
