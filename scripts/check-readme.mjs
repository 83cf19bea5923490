#!/usr/bin/env node
// README snippets are tests: `node scripts/check-readme.mjs [--tarball file]`
// (run by .ci/run). Every ```ts block of README.md is preceded by a marker:
//
//   <!-- example: NAME [run] [run:pg] [run:redis] [env:KEY=VALUE]... [del:STREAM]... -->
//     a complete program (imports included), compiled as src/NAME.ts in a
//     fresh app (the packed tarball, Nest 12's default tsconfig, then
//     skipLibCheck: false); `run*` also runs it (60 s at most) and wants exit
//     code 0: `run` needs no server, `run:pg` the test PostgreSQL (PG_URL,
//     given to the program as DATABASE_URL), `run:redis` the test Redis
//     (REDIS_URL); `env:` sets a variable for the run; `del:` names a Redis
//     stream the program writes, deleted afterwards (the Redis is shared).
//   <!-- fragment of: NAME -->
//     an excerpt of the complete example NAME (not compiled on its own).
//
// A block without a marker, a fragment of an unknown example, a duplicate
// name, a compile error (reported at its README line) or a failed run fails
// the check.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT, compile, freshApp, packedTarball } from './fresh-app.mjs';

const PG_URL = process.env.PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const README = path.join(ROOT, 'README.md');

/** Parses README.md into examples and fragments; throws on an unmarked or badly marked block. */
export function readmeBlocks(text) {
  const lines = text.split('\n');
  const examples = [];
  const fragments = [];
  const problems = [];
  for (let i = 0; i < lines.length; i++) {
    if (!/^```(ts|typescript)\s*$/.test(lines[i])) continue;
    const start = i + 1;
    let end = start;
    while (end < lines.length && !/^```\s*$/.test(lines[end])) end++;
    const code = lines.slice(start, end).join('\n');
    const marker = lines[i - 1] ?? '';
    const example = /^<!-- example: ([a-z0-9-]+)((?: [^ ]+)*) -->$/.exec(marker);
    const fragment = /^<!-- fragment of: ([a-z0-9-]+) -->$/.exec(marker);
    if (example) {
      const flags = example[2].trim().split(/\s+/).filter(Boolean);
      const env = {};
      const streams = [];
      let run = null;
      for (const flag of flags) {
        if (flag === 'run' || flag === 'run:pg' || flag === 'run:redis') run = flag;
        else if (flag.startsWith('env:') && flag.includes('=')) {
          const [key, ...value] = flag.slice(4).split('=');
          env[key] = value.join('=');
        } else if (flag.startsWith('del:')) streams.push(flag.slice(4));
        else problems.push(`README.md:${i}: unknown flag "${flag}" in ${marker}`);
      }
      examples.push({ name: example[1], line: start + 1, code, run, env, streams });
    } else if (fragment) {
      fragments.push({ of: fragment[1], line: start + 1 });
    } else {
      problems.push(
        `README.md:${i + 1}: a ts block without a marker: put <!-- example: NAME --> or <!-- fragment of: NAME --> on the line before it`,
      );
    }
    i = end;
  }
  const names = new Set();
  for (const { name, line } of examples) {
    if (names.has(name)) problems.push(`README.md:${line}: example name "${name}" used twice`);
    names.add(name);
  }
  for (const { of, line } of fragments) {
    if (!names.has(of))
      problems.push(`README.md:${line}: fragment of "${of}", which is no example`);
  }
  return { examples, fragments, problems };
}

/** tsc reports src/NAME.ts(l,c); say where that is in README.md. */
function toReadmeLines(output, examples) {
  return output.replace(/src\/([a-z0-9-]+)\.ts\((\d+),(\d+)\)/g, (whole, name, line, column) => {
    const example = examples.find(e => e.name === name);
    return example
      ? `README.md:${example.line + Number(line) - 1}:${column} (example ${name})`
      : whole;
  });
}

async function deleteStreams(streams) {
  if (!streams.length) return;
  const { Redis } = await import('ioredis');
  const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    await redis.del(...streams);
  } finally {
    redis.disconnect();
  }
}

async function main() {
  const { examples, fragments, problems } = readmeBlocks(readFileSync(README, 'utf8'));
  if (problems.length) {
    console.error(problems.join('\n'));
    process.exit(1);
  }
  const tarball = packedTarball();
  const app = freshApp(
    'readme',
    [
      '@nestjs/common',
      '@nestjs/core',
      '@nestjs/config',
      '@nestjs/microservices',
      '@nestjs/terminus',
      '@opentelemetry/api',
      '@opentelemetry/exporter-prometheus',
      '@opentelemetry/sdk-metrics',
      'reflect-metadata',
      'rxjs',
      'pg',
      '@types/pg',
      'ioredis',
      'typescript',
      '@types/node',
      'zod',
      'valibot',
    ],
    tarball,
  );
  const src = path.join(app, 'src');
  rmSync(src, { recursive: true, force: true });
  rmSync(path.join(app, 'dist'), { recursive: true, force: true });
  mkdirSync(src);
  for (const { name, code } of examples) writeFileSync(path.join(src, `${name}.ts`), `${code}\n`);

  const failures = [];
  const compileErrors = compile(app);
  if (compileErrors) failures.push(toReadmeLines(compileErrors, examples));

  const runnable = examples.filter(e => e.run);
  if (!compileErrors) {
    for (const example of runnable) {
      const result = spawnSync(process.execPath, [path.join('dist', `${example.name}.js`)], {
        cwd: app,
        encoding: 'utf8',
        timeout: 60_000,
        env: { ...process.env, DATABASE_URL: PG_URL, REDIS_URL, ...example.env },
      });
      await deleteStreams(example.streams);
      if (result.status !== 0) {
        failures.push(
          `example ${example.name} (README.md:${example.line}) ${
            result.error
              ? `did not finish: ${result.error.message}`
              : `exited with ${result.status ?? result.signal}`
          }\n${result.stdout}${result.stderr}`,
        );
      } else console.log(`ran ${example.name}: ok`);
    }
  }
  if (failures.length) {
    console.error(failures.join('\n'));
    console.error(`check-readme: FAILED (${examples.length} examples, app in ${app})`);
    process.exit(1);
  }
  console.log(
    `check-readme: ${examples.length} examples compiled (Nest 12 default tsconfig, and skipLibCheck: false), ` +
      `${runnable.length} ran, ${fragments.length} fragments point at them`,
  );
}

await main();
