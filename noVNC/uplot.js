// The charting library of the dashboard's graphs (uPlot), as one module:
// `npm ci` (this package's postinstall) bundles it with esbuild into
// node_modules/.hcc/uplot.js, which the build embeds at /uplot/uplot.js
// (with its stylesheet, /uplot/uplot.css, and its licence).
export { default } from './node_modules/uplot/dist/uPlot.esm.js';
