// What hcc's pages take from noVNC, as one module: `npm ci` (this
// package's postinstall) bundles it with esbuild into
// node_modules/.hcc/novnc.js, which the build embeds at /novnc/novnc.js.
// One file instead of noVNC's ~50 modules: a browser opening its first
// console asks hcc for a handful of files, not sixty, in one round trip
// instead of a chain of imports.
export { default as RFB } from './node_modules/@novnc/novnc/core/rfb.js';
export { default as keysymdef } from './node_modules/@novnc/novnc/core/input/keysymdef.js';
export { default as KeyTable } from './node_modules/@novnc/novnc/core/input/keysym.js';
