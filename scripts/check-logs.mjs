#!/usr/bin/env node
// Every WARN and ERROR line of lib/ is one an operator can look up (issue 25).
//
// Finds each `<...>logger.warn(...)` / `<...>logger.error(...)` call (any
// receiver whose last name ends in `logger`, `logger()` and `?.` included)
// and each WarningLimiter call (`<...>limiter.warn|error(cause, message)`,
// `<...>warnings.warn|error(...)`), and fails unless its message is
// `logLine(transport, 'code', message, fields)` — or a `cond ? logLine(..) :
// logLine(..)` — whose code is a kebab-case literal, used at no other call,
// and listed in README.md's "Log lines" table
// (`| \`code\` | level | transport | meaning | what to do |`) with the same level
// (and the same transport when the call names it literally). README rows
// whose code no call uses are reported too (a stale row).
//
// Not checked: calls whose message is a parameter of the enclosing function
// (forwarding adapters such as `warn: message => ctx.logger.warn(message)`),
// and the machinery in FORWARDERS below. INFO lines (`logger.log`) are free.
//
//   node scripts/check-logs.mjs                 # lib/ and README.md of this checkout
//   node scripts/check-logs.mjs --root DIR      # DIR/lib and DIR/README.md (tests)
//   node scripts/check-logs.mjs --advisory      # one summary line, exit 0 (lint, until enabled)
//   node scripts/check-logs.mjs --list          # print the calls found, as table rows to fill in
//   node scripts/check-logs.mjs --add-rows F... # merge the rows of LOGCODES.md files F into the
//                                               # table (sorted by transport, code), then check
//
// Rows whose level is not exactly WARN or ERROR (INFO recovery lines, a
// native runtime's stderr) are documentation only: no call is required.
import { readFileSync, readdirSync, statSync, existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const args = process.argv.slice(2);
const flag = name => args.includes(name);
const valueOf = name => {
  const at = args.indexOf(name);
  return at >= 0 ? args[at + 1] : undefined;
};
const root = path.resolve(
  valueOf('--root') ?? path.join(path.dirname(fileURLToPath(import.meta.url)), '..'),
);
const lib = path.join(root, 'lib');
const readmePath = path.join(root, 'README.md');

/** Files that pass other callers' lines on: their own calls are not lines. */
const FORWARDERS = new Set(['lib/common/logger.ts', 'lib/common/warning-limiter.ts']);
const CODE = /^[a-z0-9]+(?:-[a-z0-9]+)*$/;
const CHECKED_LEVELS = new Set(['warn', 'error']);
const END_MARKER = '<!-- /log-lines -->';

/** The cells of a table row, or undefined for a line that is not one. */
function cellsOf(line) {
  if (!line.trimStart().startsWith('|')) return undefined;
  const cells = line.split('|').map(c => c.trim());
  return cells.length >= 7 ? cells.slice(1, -1) : undefined;
}

/** `--add-rows`: the rows of each LOGCODES.md file merged into the README table. */
function addRows(files) {
  const text = readFileSync(readmePath, 'utf8');
  const lines = text.split('\n');
  const start = lines.findIndex(l => /^#{2,4}\s+Log lines\b/.test(l));
  const end = lines.indexOf(END_MARKER);
  if (start < 0 || end < 0)
    throw new Error(`README.md needs a "Log lines" table ending with ${END_MARKER}`);
  const header = lines.findIndex((l, i) => i > start && cellsOf(l)?.[0] === 'code');
  const rows = new Map();
  const conflicts = [];
  const take = (cells, from) => {
    const code = cells[0].replace(/`/g, '');
    if (code === 'code' || !CODE.test(code)) return; // header and separator rows
    const row = `| \`${code}\` | ${cells.slice(1).join(' | ')} |`;
    const known = rows.get(code);
    if (known && known.row !== row) conflicts.push(`code '${code}' in ${known.from} and ${from}`);
    else rows.set(code, { row, transport: cells[2], from });
  };
  for (let i = header + 2; i < end; i++) {
    const cells = cellsOf(lines[i]);
    if (cells) take(cells, 'README.md');
  }
  for (const file of files) {
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      const cells = cellsOf(line);
      if (cells) take(cells, file);
    }
  }
  if (conflicts.length) {
    for (const c of conflicts) console.error(`check-logs: --add-rows: ${c} differ; keep one`);
    process.exit(1);
  }
  const sorted = [...rows.entries()]
    .sort(([a, x], [b, y]) => x.transport.localeCompare(y.transport) || a.localeCompare(b))
    .map(([, r]) => r.row);
  lines.splice(header + 2, end - header - 2, ...sorted);
  writeFileSync(readmePath, lines.join('\n'));
  console.log(
    `check-logs: README.md's table has ${sorted.length} rows (run prettier on README.md)`,
  );
}

function walk(dir, out = []) {
  for (const entry of readdirSync(dir)) {
    const full = path.join(dir, entry);
    if (statSync(full).isDirectory()) walk(full, out);
    else if (entry.endsWith('.ts') && !entry.endsWith('.d.ts')) out.push(full);
  }
  return out;
}

/** The last name of a receiver: `this.options.logger` → logger, `this.logger()` → logger. */
function lastName(node) {
  let n = node;
  while (ts.isCallExpression(n) || ts.isNonNullExpression(n) || ts.isParenthesizedExpression(n)) {
    n = n.expression;
  }
  if (ts.isPropertyAccessExpression(n)) return n.name.text;
  if (ts.isIdentifier(n)) return n.text;
  return undefined;
}

function literalText(node) {
  return node && (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node))
    ? node.text
    : undefined;
}

/** The parameter names of the functions enclosing `node`. */
function enclosingParameters(node) {
  const names = new Set();
  for (let n = node.parent; n; n = n.parent) {
    if (ts.isFunctionLike(n)) {
      for (const p of n.parameters ?? []) if (ts.isIdentifier(p.name)) names.add(p.name.text);
    }
  }
  return names;
}

/** The logLine calls a message is made of, or a problem. */
function logLinesOf(message) {
  let m = message;
  while (m && ts.isParenthesizedExpression(m)) m = m.expression;
  if (!m) return { problem: 'no message' };
  if (ts.isConditionalExpression(m)) {
    const a = logLinesOf(m.whenTrue);
    const b = logLinesOf(m.whenFalse);
    if (a.problem || b.problem) return { problem: a.problem ?? b.problem };
    return { lines: [...a.lines, ...b.lines] };
  }
  if (ts.isCallExpression(m) && ts.isIdentifier(m.expression) && m.expression.text === 'logLine') {
    const [transportArg, codeArg] = m.arguments;
    const code = literalText(codeArg);
    if (code === undefined) return { problem: 'logLine code is not a string literal' };
    if (!CODE.test(code)) return { problem: `logLine code '${code}' is not kebab-case` };
    return { lines: [{ code, transport: literalText(transportArg) }] };
  }
  return { problem: 'message is not built with logLine(transport, code, message, fields)' };
}

/** The "Log lines" table of the README: code → { level, transport, line }. */
function readTable() {
  const rows = new Map();
  if (!existsSync(readmePath)) return { rows, problem: `${readmePath} not found` };
  const lines = readFileSync(readmePath, 'utf8').split('\n');
  const start = lines.findIndex(l => /^#{2,4}\s+Log lines\b/.test(l));
  if (start < 0) return { rows, problem: 'README.md has no "Log lines" heading' };
  const depth = lines[start].match(/^#+/)[0].length;
  for (let i = start + 1; i < lines.length; i++) {
    const heading = lines[i].match(/^(#+)\s/);
    if (heading && heading[1].length <= depth) break;
    const cells = lines[i].split('|').map(c => c.trim());
    if (cells.length < 7 || !lines[i].trimStart().startsWith('|')) continue;
    // A row's code is in backticks (or bare); the header and separator rows have none.
    const code = cells[1].replace(/^`([^`]+)`$/, '$1');
    if (code === 'code' || !CODE.test(code)) continue;
    const level = cells[2].replace(/`/g, '').toLowerCase();
    const transport = cells[3].replace(/`/g, '');
    if (rows.has(code)) rows.get(code).duplicate = i + 1;
    else rows.set(code, { level, transport, line: i + 1 });
  }
  return { rows };
}

const addAt = args.indexOf('--add-rows');
if (addAt >= 0) addRows(args.slice(addAt + 1).filter(a => !a.startsWith('--')));

const problems = [];
const calls = [];
for (const file of existsSync(lib) ? walk(lib) : []) {
  const rel = path.relative(root, file).split(path.sep).join('/');
  if (FORWARDERS.has(rel)) continue;
  const text = readFileSync(file, 'utf8');
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const visit = node => {
    if (
      ts.isCallExpression(node) &&
      ts.isPropertyAccessExpression(node.expression) &&
      (node.expression.name.text === 'warn' || node.expression.name.text === 'error')
    ) {
      const receiver = lastName(node.expression.expression) ?? '';
      const isLogger = /logger$/i.test(receiver);
      const isLimiter = /(limiter|warnings)$/i.test(receiver);
      if (isLogger || isLimiter) {
        const level = node.expression.name.text;
        const message = node.arguments[isLimiter ? 1 : 0];
        const { line } = source.getLineAndCharacterOfPosition(node.getStart());
        const where = `${rel}:${line + 1}`;
        const forwarded =
          message && ts.isIdentifier(message) && enclosingParameters(node).has(message.text);
        if (!forwarded) {
          const { lines, problem } = logLinesOf(message);
          if (problem) problems.push(`${where}: ${level}: ${problem}`);
          else for (const l of lines) calls.push({ ...l, level, where });
        }
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
}

const { rows, problem: tableProblem } = readTable();
if (tableProblem) problems.push(tableProblem);
const seen = new Map();
for (const call of calls) {
  const first = seen.get(call.code);
  if (first) {
    problems.push(`${call.where}: code '${call.code}' is used at ${first.where} too`);
    continue;
  }
  seen.set(call.code, call);
  const row = rows.get(call.code);
  if (!row) {
    if (!tableProblem) {
      problems.push(`${call.where}: code '${call.code}' is not in README.md's "Log lines" table`);
    }
    continue;
  }
  if (!CHECKED_LEVELS.has(row.level)) {
    problems.push(
      `${call.where}: code '${call.code}' is logged at ${call.level}, README.md:${row.line} says ${row.level}`,
    );
  } else if (row.level !== call.level) {
    problems.push(
      `${call.where}: code '${call.code}' is logged at ${call.level}, README.md:${row.line} says ${row.level}`,
    );
  }
  if (call.transport !== undefined && row.transport !== call.transport) {
    problems.push(
      `${call.where}: code '${call.code}' names transport ${call.transport}, README.md:${row.line} says ${row.transport}`,
    );
  }
}
for (const [code, row] of rows) {
  if (row.duplicate) problems.push(`README.md:${row.duplicate}: code '${code}' listed twice`);
  if (!seen.has(code) && CHECKED_LEVELS.has(row.level)) {
    problems.push(`README.md:${row.line}: code '${code}' is listed but no WARN/ERROR call uses it`);
  }
}

if (flag('--list')) {
  for (const call of calls) {
    console.log(
      `| \`${call.code}\` | ${call.level} | ${call.transport ?? '?'} |  |  |  <!-- ${call.where} -->`,
    );
  }
}
if (problems.length === 0) {
  console.log(`check-logs: ${calls.length} WARN/ERROR lines, each with a unique code in README.md`);
} else if (flag('--advisory')) {
  console.log(
    `check-logs: ${problems.length} problem(s) (advisory; \`node scripts/check-logs.mjs\` lists them)`,
  );
} else {
  for (const p of problems) console.error(`check-logs: ${p}`);
  console.error(`check-logs: ${problems.length} problem(s)`);
  process.exit(1);
}
