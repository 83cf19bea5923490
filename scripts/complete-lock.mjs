#!/usr/bin/env node
// The registry mirror this project is built against serves only some of the
// per-platform optional packages (@swc/core-*, @unrs/resolver-binding-*), so
// npm writes a package-lock.json without entries for the others, and `npm ci`
// then refuses the lock as out of sync. This adds the missing entries, marked
// optional and tagged with the os/cpu their names carry, so `npm ci` skips
// them on every other platform. Run it after any `npm install` that rewrites
// the lock: node scripts/complete-lock.mjs
import { readFileSync, writeFileSync } from 'node:fs';

const OS = [
  'darwin',
  'win32',
  'android',
  'freebsd',
  'openharmony',
  'linux',
  'sunos',
  'aix',
  'netbsd',
  'openbsd',
];
const CPU = ['arm64', 'x64', 'ia32', 'ppc64', 's390x', 'riscv64', 'loong64', 'arm', 'wasm32'];
const file = new URL('../package-lock.json', import.meta.url);
const lock = JSON.parse(readFileSync(file, 'utf8'));
const packages = lock.packages;
let added = 0;
for (const meta of Object.values(packages)) {
  for (const [name, range] of Object.entries(meta.optionalDependencies ?? {})) {
    const key = `node_modules/${name}`;
    if (packages[key]) continue;
    const tokens = name.split('/').pop().split(/[-_]/);
    const os = OS.find(o => tokens.includes(o));
    const cpu = CPU.find(c => tokens.includes(c));
    packages[key] = {
      version: range.replace(/^[\^~=]/, ''),
      optional: true,
      ...(os ? { os: [os] } : {}),
      ...(cpu ? { cpu: [cpu] } : {}),
    };
    added++;
  }
}
const [root, ...rest] = Object.entries(packages);
lock.packages = Object.fromEntries([
  root,
  ...rest.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
]);
writeFileSync(file, JSON.stringify(lock, null, 2) + '\n');
console.log(`complete-lock: added ${added} platform entries`);
