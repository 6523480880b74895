// Prints the closing line `tests: N passed, M failed` from vitest JSON reports. A skipped or
// pending test counts as failed here: in CI every test must run. A missing report counts as a
// failed run. Failed tests are listed by name, with the first line of their failure, so that the
// end of the CI log says what failed. A run that vitest failed with no failed test in its report
// (an uncaught error outside any test: the report does not show those) counts as one failure; its
// exit status is read from the `.status` file beside the report. Exit status 1 when anything failed.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

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
  for (const fileResult of report.testResults) {
    for (const test of fileResult.assertionResults) {
      if (test.status === 'passed') continue;
      const reason = (test.failureMessages?.[0] ?? test.status).split('\n')[0].slice(0, 300);
      console.log(
        `  ${test.status}: ${path.relative(process.cwd(), fileResult.name)} > ${test.fullName}: ${reason}`,
      );
    }
    if (fileResult.status === 'failed' && fileResult.assertionResults.length === 0) {
      console.log(
        `  broken: ${path.relative(process.cwd(), fileResult.name)}: ${(fileResult.message ?? '').split('\n')[0].slice(0, 300)}`,
      );
    }
  }
  passed += report.numPassedTests;
  failed += report.numFailedTests + notRun + broken;
  const statusFile = file.replace(/\.json$/, '.status');
  const status = existsSync(statusFile) ? Number(readFileSync(statusFile, 'utf8')) : 0;
  if (status !== 0 && report.numFailedTests + notRun + broken === 0) {
    console.log(`  errors outside tests: vitest exited with status ${status} (the log above has them)`);
    failed += 1;
  }
}
console.log(`tests: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
