// Writes a JUnit file with jest-junit's own code, from test results shaped as jest hands them to
// a results processor (no jest needed): node jest_report.js JEST_JUNIT_MODULE OUTPUT_FILE ROOT
"use strict";
const [moduleDir, output, root] = process.argv.slice(2);
process.env.JEST_JUNIT_OUTPUT_FILE = output;
process.env.JEST_JUNIT_ADD_FILE_ATTRIBUTE = "true";
process.chdir(root);
const now = Date.now();
const red = (text) => `\u001b[31m${text}\u001b[39m`;
const suite = (file, tests) => ({
  testFilePath: `${root}/${file}`,
  numFailingTests: tests.filter((t) => t.status === "failed").length,
  numPassingTests: tests.filter((t) => t.status === "passed").length,
  numPendingTests: tests.filter((t) => t.status === "pending").length,
  perfStats: { start: now - 1500, end: now },
  testResults: tests.map((t) => ({ duration: 12, failureMessages: [], invocations: 1, ...t })),
});
const report = {
  startTime: now - 2000,
  testResults: [
    suite("src/sum.test.js", [
      { ancestorTitles: ["sum"], title: "adds one and two", status: "passed" },
      {
        ancestorTitles: ["sum"],
        title: "carries over ten",
        status: "failed",
        failureMessages: [
          `Error: ${red("expect(received).toBe(expected)")}\n\nExpected: 10\nReceived: 9\n` +
            `    at Object.<anonymous> (${root}/src/sum.test.js:14:23)\n` +
            `    at Promise.then.completed (${root}/node_modules/jest-circus/build/utils.js:298:28)`,
        ],
      },
      { ancestorTitles: ["sum"], title: "handles bigint", status: "pending" },
    ]),
    suite("src/text.test.js", [
      { ancestorTitles: ["text", "trim"], title: "drops blanks", status: "passed" },
    ]),
  ],
};
require(moduleDir)(report);
