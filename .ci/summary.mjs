// Prints the closing line `tests: N passed, M failed` from vitest JSON reports. A skipped or
// pending test counts as failed here: in CI every test must run. A missing report counts as a
// failed run. Exit status 1 when anything failed.
import { readFileSync } from 'node:fs';

let passed = 0;
let failed = 0;
for (const file of process.argv.slice(2)) {
  let report;
  try {
    report = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    console.log(`${file}: no report`);
    failed += 1;
    continue;
  }
  const notRun = report.numPendingTests + report.numTodoTests;
  const broken = report.testResults.filter(
    (r) => r.status === 'failed' && r.assertionResults.length === 0,
  ).length;
  console.log(
    `${file}: ${report.numPassedTests} passed, ${report.numFailedTests} failed, ${notRun} not run, ${broken} broken files`,
  );
  passed += report.numPassedTests;
  failed += report.numFailedTests + notRun + broken;
}
console.log(`tests: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
