// bench/harness/otel-strip.mjs: the "uninstrumented" build of issue 26's
// overhead check. It runs in a real node process (an ES module with
// import.meta, as the bench tools load it), on this checkout's lib/ and on
// hook sites written here.
import { execFileSync } from 'node:child_process';
import path from 'node:path';

const root = path.resolve(__dirname, '..', '..', '..');
const tool = path.join(root, 'bench', 'harness', 'otel-strip.mjs');

interface Stripped {
  code?: string;
  error?: string;
}

/** Runs `stripTelemetry` on `source` in a child node process. */
function strip(source: string): Stripped {
  const script = `
    const { stripTelemetry } = await import(${JSON.stringify(tool)});
    try {
      process.stdout.write(JSON.stringify({ code: stripTelemetry(process.env.SOURCE, 'x.ts').code }));
    } catch (error) {
      process.stdout.write(JSON.stringify({ error: error.message }));
    }`;
  return JSON.parse(
    execFileSync(process.execPath, ['--input-type=module', '-e', script], {
      cwd: root,
      env: { ...process.env, SOURCE: source },
      encoding: 'utf8',
    }),
  ) as Stripped;
}

describe('otel-strip (bench/harness): the telemetry compiled out', () => {
  // Each case starts node and loads the TypeScript compiler: seconds, more on a busy machine.
  jest.setTimeout(180_000);

  it('folds every hook site of lib/ and names the files', () => {
    const out = execFileSync(process.execPath, [tool], { cwd: root, encoding: 'utf8' });
    expect(out).toMatch(/^lib\/bus\/event-bus\.ts: \d+ hook site/m);
    expect(out).toMatch(/^lib\/bus\/event-bus\.dispatcher\.ts: \d+ hook site/m);
    expect(out).toMatch(/^lib\/microservices\/base\/herald\.server\.ts: \d+ hook site/m);
    expect(out).toMatch(/^lib\/microservices\/base\/herald\.client\.ts: \d+ hook site/m);
    expect(out).not.toMatch(/^lib\/otel\//m);
  });

  it('keeps the branch without telemetry and drops the hook calls and fields', () => {
    const { code, error } = strip(`
      class Bus {
        constructor() { this.instrumentation = currentInstrumentation()?.bus('x'); }
        post(a) { return this.instrumentation ? this.instrumentation.post(a, () => send(a)) : send(a); }
        receive(d) { this.instrumentation?.delivered(d); take(d); }
        handle(h) {
          if (h.many || this.options.instrumentation !== undefined) return all(h);
          const hook = this.options.instrumentation;
          return hook ? hook.handle(h) : h.call();
        }
        emit(p) {
          const telemetry = this.telemetry;
          if (!telemetry) return out(p);
          return telemetry.send(p, () => out(p));
        }
      }`);
    expect(error).toBeUndefined();
    expect(code).toContain('return send(a);');
    expect(code).toContain('take(d);');
    expect(code).toContain('if (h.many)');
    expect(code).toContain('return h.call();');
    expect(code).toContain('return out(p);');
    expect(code).not.toMatch(/instrumentation|telemetry|hook/);
  });

  it('refuses a hook site it cannot fold, naming the file and line', () => {
    const { error } = strip(`function f() {\n  return this.telemetry.send(1);\n}`);
    expect(error).toMatch(/cannot compile out every telemetry hook/);
    expect(error).toMatch(/x\.ts:2/);
  });
});
