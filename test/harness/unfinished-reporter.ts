/**
 * A vitest reporter for CI logs: when a run ends with test files that never finished (a worker
 * that exited, a run cut short), it names each one and the test that was running in it. Vitest's
 * own "Worker exited unexpectedly" does not say which file's worker it was.
 */
import type { Reporter, TestCase, TestModule } from 'vitest/node';

export default class UnfinishedReporter implements Reporter {
  private readonly running = new Map<string, string>();

  onTestModuleStart(module: TestModule): void {
    this.running.set(module.moduleId, '(collecting)');
  }

  onTestCaseReady(test: TestCase): void {
    this.running.set(test.module.moduleId, test.fullName);
  }

  onTestModuleEnd(module: TestModule): void {
    this.running.delete(module.moduleId);
  }

  onTestRunEnd(): void {
    if (this.running.size === 0) return;
    const lines = [...this.running].map(([file, test]) => `  ${file}\n    last test started: ${test}`);
    process.stdout.write(`\nTest files that never finished (${this.running.size}):\n${lines.join('\n')}\n`);
  }
}
