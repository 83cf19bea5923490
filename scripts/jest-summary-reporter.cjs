// A Jest reporter that hands the run's counts to scripts/test.mjs through the
// file named by HERALD_JEST_SUMMARY (instead of `--json --outputFile`, which
// makes Jest print the path of a file the runner then deletes). Without the
// variable it does nothing.
const { writeFileSync } = require('node:fs');

class SummaryReporter {
  onRunComplete(_contexts, results) {
    const file = process.env.HERALD_JEST_SUMMARY;
    if (!file) return;
    const { numPassedTests, numFailedTests, numPendingTests, numTodoTests, numTotalTests } =
      results;
    writeFileSync(
      file,
      JSON.stringify({
        numPassedTests,
        numFailedTests,
        numPendingTests,
        numTodoTests,
        numTotalTests,
      }),
    );
  }
}

module.exports = SummaryReporter;
