#!/usr/bin/env node
// `npm run lint` step: lib/ imports point down only and form no cycle.
// Layers (DESIGN.md): common + interfaces (and otel, the telemetry plug) at the bottom; the bus, the
// transports and ffi above them, side by side and blind to each other; the
// microservice strategies over the transports; the Nest face (lib/*.ts,
// decorators, explorer, the subpath index files, testing) on top. Type-only
// imports count: a type cycle is still two files that cannot change apart.
// Inside transports, each transport's folder (ipc, local, pg, redis, tiered)
// imports no other transport's folder: only the files directly in
// lib/transports/ (create-transport.ts, create-tiered.ts) put transports together.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// `--root DIR` checks DIR/lib instead of this checkout's (the script's spec).
const rootAt = process.argv.indexOf('--root');
const root =
  rootAt >= 0
    ? path.resolve(process.argv[rootAt + 1])
    : path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const lib = path.join(root, 'lib');

/** What each layer may import, by first folder under lib/ ('.' = lib/*.ts). */
const BOTTOM = ['common', 'interfaces', 'otel'];
const allowed = {
  common: BOTTOM,
  interfaces: BOTTOM,
  otel: BOTTOM,
  bus: [...BOTTOM, 'bus'],
  transports: [...BOTTOM, 'transports'],
  ffi: [...BOTTOM, 'ffi'],
  microservices: [...BOTTOM, 'transports', 'microservices'],
};

function walk(dir, out = []) {
  for (const entry of readdirSync(dir)) {
    const full = path.join(dir, entry);
    if (statSync(full).isDirectory()) walk(full, out);
    else if (entry.endsWith('.ts') && !entry.endsWith('.d.ts')) out.push(full);
  }
  return out;
}

const layerOf = file => {
  const rel = path.relative(lib, file).split(path.sep);
  return rel.length === 1 ? '.' : rel[0];
};

/** The transport folder of a file under lib/transports ('.' = lib/transports/*.ts). */
const transportOf = file => {
  const rel = path.relative(path.join(lib, 'transports'), file).split(path.sep);
  return rel.length === 1 ? '.' : rel[0];
};

// `import x from '.'`, `export ... from '.'`, `import '.'`, `import('.')`.
const importRe =
  /(?:^|\n)\s*(?:import|export)\s[^'";]*?from\s*['"](\.[^'"]+)['"]|\bimport\s*\(?\s*['"](\.[^'"]+)['"]/g;
const graph = new Map();
const problems = [];
for (const file of walk(lib)) {
  const source = readFileSync(file, 'utf8');
  const targets = [];
  for (const match of source.matchAll(importRe)) {
    const spec = match[1] ?? match[2];
    const target = path.resolve(path.dirname(file), spec).replace(/\.js$/, '.ts');
    targets.push(target);
    const from = layerOf(file);
    const to = layerOf(target);
    if (allowed[from] && !allowed[from].includes(to)) {
      problems.push(
        `upward or sideways import: ${path.relative(root, file)} (${from}) -> ${path.relative(root, target)} (${to}); ${from} may import ${allowed[from].join(', ')}`,
      );
    } else if (from === 'transports' && to === 'transports') {
      const own = transportOf(file);
      const other = transportOf(target);
      if (own !== '.' && own !== other) {
        problems.push(
          `one transport imports another: ${path.relative(root, file)} (${own}) -> ${path.relative(root, target)} (${other}); only lib/transports/*.ts combine transports`,
        );
      }
    }
  }
  graph.set(file, targets);
}

// Tarjan's strongly connected components: any component of two or more files is a cycle.
let index = 0;
const stack = [];
const meta = new Map();
function connect(node) {
  const m = { index, low: index, onStack: true };
  meta.set(node, m);
  index++;
  stack.push(node);
  for (const next of graph.get(node) ?? []) {
    if (!graph.has(next)) continue;
    if (!meta.has(next)) {
      connect(next);
      m.low = Math.min(m.low, meta.get(next).low);
    } else if (meta.get(next).onStack) m.low = Math.min(m.low, meta.get(next).index);
  }
  if (m.low === m.index) {
    const component = [];
    let member;
    do {
      member = stack.pop();
      meta.get(member).onStack = false;
      component.push(member);
    } while (member !== node);
    if (component.length > 1) {
      problems.push(`import cycle: ${component.map(f => path.relative(root, f)).join(' <-> ')}`);
    }
  }
}
for (const node of graph.keys()) if (!meta.has(node)) connect(node);

if (problems.length) {
  for (const problem of problems) console.error(`check-layers: ${problem}`);
  process.exit(1);
}
console.log(`check-layers: ${graph.size} files, imports point down, no cycle`);
