// The "uninstrumented" build of issue 26's overhead check: the same checkout
// with every telemetry hook compiled out of lib/, so `absent` (the API not
// installed) can be compared with the same code minus telemetry on any
// commit, whatever else changed in the bus and the transports since.
//
// buildStrippedTree(root) copies the checkout (not .git or node_modules,
// which is linked) to a temporary directory and rewrites lib/**/*.ts there
// with the TypeScript compiler's AST: every hook reference — a read of a
// property named `instrumentation` or `telemetry`, a call of
// `currentInstrumentation()`, a local alias of either — becomes `undefined`,
// `autoloadTelemetry()` becomes `Promise.resolve()`, and what that makes
// constant is folded away: `undefined ? a : b` -> b, `undefined?.f(x)` ->
// nothing, `!undefined` -> true, `x || undefined !== undefined` -> x,
// `if (!undefined) S` -> S, statements that only store `undefined` into a
// hook field and object members `instrumentation: undefined` are removed
// (so the bus and the dispatcher do not even have the field). TypeScript's
// import elision then drops the imports only the hooks used. lib/otel/**,
// lib/common/instrumentation.ts and lib/interfaces/** (where the hooks are
// defined, never called per event) are copied as they are.
//
// It refuses rather than guesses: a hook reference it cannot fold (a new
// kind of hook site) throws, naming the file, line and text, so the check
// never silently compares a half-stripped build. `node otel-strip.mjs`
// prints every site it folds.
import {
  cpSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);

const HOOK_PROPERTIES = new Set(['instrumentation', 'telemetry']);
const HOOK_CALLS = new Set(['currentInstrumentation']);
const LOADER_CALLS = new Set(['autoloadTelemetry']);
/** Where the hooks are defined: copied unchanged. */
const KEEP = [/^lib\/otel\//, /^lib\/interfaces\//, /^lib\/common\/instrumentation\.ts$/];

/**
 * Compiles the telemetry hooks out of one TypeScript file.
 * @returns the rewritten source and the hook sites folded (line and text).
 */
export function stripTelemetry(source, fileName, ts = require('typescript')) {
  const file = ts.createSourceFile(fileName, source, ts.ScriptTarget.ES2022, true);
  const sites = [];
  const f = ts.factory;
  const isUndefined = node => node && ts.isIdentifier(node) && node.text === 'undefined';
  const isTrue = node => node && node.kind === ts.SyntaxKind.TrueKeyword;
  const isFalse = node => node && node.kind === ts.SyntaxKind.FalseKeyword;
  const site = node =>
    sites.push({
      line: file.getLineAndCharacterOfPosition(node.getStart(file)).line + 1,
      text: node.getText(file).split('\n')[0].slice(0, 100),
    });
  /** Names of local variables holding a hook (`const hook = this.options.instrumentation`). */
  const aliases = new Set();
  const isHookRead = node => {
    if (ts.isParenthesizedExpression(node)) return isHookRead(node.expression);
    if (ts.isPropertyAccessExpression(node) && HOOK_PROPERTIES.has(node.name.text)) return true;
    if (ts.isCallExpression(node) && ts.isIdentifier(node.expression))
      return HOOK_CALLS.has(node.expression.text);
    return ts.isIdentifier(node) && aliases.has(node.text);
  };
  const isAssignmentTarget = node =>
    node.parent &&
    ts.isBinaryExpression(node.parent) &&
    node.parent.left === node &&
    node.parent.operatorToken.kind === ts.SyntaxKind.EqualsToken;
  /** In a position where a value is read (not a declaration's or a member's name, not a type). */
  const isValuePosition = node => {
    const parent = node.parent;
    if (!parent) return false;
    if (ts.isPropertyAccessExpression(parent) && parent.name === node) return false;
    if (
      (ts.isVariableDeclaration(parent) ||
        ts.isPropertyDeclaration(parent) ||
        ts.isPropertyAssignment(parent) ||
        ts.isParameter(parent) ||
        ts.isPropertySignature(parent) ||
        ts.isBindingElement(parent) ||
        ts.isShorthandPropertyAssignment(parent) ||
        ts.isImportSpecifier(parent)) &&
      parent.name === node
    )
      return false;
    for (let up = parent; up; up = up.parent) if (ts.isTypeNode(up)) return false;
    return true;
  };
  // Aliases first: `const x = <hook read>` anywhere in the file.
  const findAliases = node => {
    if (
      ts.isVariableDeclaration(node) &&
      ts.isIdentifier(node.name) &&
      node.initializer &&
      isHookRead(node.initializer)
    )
      aliases.add(node.name.text);
    ts.forEachChild(node, findAliases);
  };
  findAliases(file);

  const fold = node => {
    // A conditional on a constant.
    if (ts.isConditionalExpression(node)) {
      if (isUndefined(node.condition) || isFalse(node.condition)) return node.whenFalse;
      if (isTrue(node.condition)) return node.whenTrue;
    }
    if (ts.isPrefixUnaryExpression(node) && node.operator === ts.SyntaxKind.ExclamationToken) {
      if (isUndefined(node.operand) || isFalse(node.operand)) return f.createTrue();
      if (isTrue(node.operand)) return f.createFalse();
    }
    if (ts.isParenthesizedExpression(node) && isUndefined(node.expression)) return node.expression;
    // `undefined?.x`, `undefined?.f(...)`, and what follows in the chain.
    if (
      (ts.isPropertyAccessExpression(node) || ts.isCallExpression(node)) &&
      isUndefined(node.expression) &&
      (node.questionDotToken || ts.isOptionalChain(node))
    )
      return f.createIdentifier('undefined');
    if (
      (ts.isPropertyAccessExpression(node) || ts.isCallExpression(node)) &&
      ts.isOptionalChain(node) &&
      !node.questionDotToken &&
      isUndefined(node.expression)
    )
      return f.createIdentifier('undefined');
    if (ts.isBinaryExpression(node)) {
      const op = node.operatorToken.kind;
      const { left, right } = node;
      const strict = [
        ts.SyntaxKind.ExclamationEqualsEqualsToken,
        ts.SyntaxKind.EqualsEqualsEqualsToken,
      ];
      if (strict.includes(op) && isUndefined(left) && isUndefined(right))
        return op === ts.SyntaxKind.EqualsEqualsEqualsToken ? f.createTrue() : f.createFalse();
      if (op === ts.SyntaxKind.BarBarToken) {
        if (isFalse(right) || isUndefined(right)) return left;
        if (isFalse(left) || isUndefined(left)) return right;
      }
      if (op === ts.SyntaxKind.AmpersandAmpersandToken && (isFalse(left) || isUndefined(left)))
        return left;
    }
    if (ts.isIfStatement(node)) {
      if (isTrue(node.expression)) return node.thenStatement;
      if (isFalse(node.expression) || isUndefined(node.expression))
        return node.elseStatement ?? f.createEmptyStatement();
    }
    // Statements left with nothing to do: `undefined;`, `this.telemetry = undefined;`.
    if (ts.isExpressionStatement(node)) {
      const e = node.expression;
      if (isUndefined(e)) return undefined;
      if (
        ts.isBinaryExpression(e) &&
        e.operatorToken.kind === ts.SyntaxKind.EqualsToken &&
        ts.isPropertyAccessExpression(e.left) &&
        HOOK_PROPERTIES.has(e.left.name.text) &&
        isUndefined(e.right)
      )
        return undefined;
    }
    if (ts.isPropertyAssignment(node) && ts.isIdentifier(node.name)) {
      if (HOOK_PROPERTIES.has(node.name.text) && isUndefined(node.initializer)) return undefined;
    }
    // Code after a statement that always returns is dead (`if (!telemetry) return a; return telemetry.b`).
    if (ts.isBlock(node)) {
      const end = node.statements.findIndex(terminates);
      if (end >= 0 && end < node.statements.length - 1)
        return f.updateBlock(node, node.statements.slice(0, end + 1));
    }
    // `const hook = undefined;`: every use of it is gone.
    if (ts.isVariableStatement(node)) {
      const kept = node.declarationList.declarations.filter(
        d => !(ts.isIdentifier(d.name) && aliases.has(d.name.text)),
      );
      if (kept.length === 0) return undefined;
    }
    return node;
  };

  /** A statement after which nothing in its block runs. */
  const terminates = statement =>
    ts.isReturnStatement(statement) ||
    ts.isThrowStatement(statement) ||
    (ts.isBlock(statement) &&
      statement.statements.length > 0 &&
      terminates(statement.statements[statement.statements.length - 1]));

  const transformer = context => {
    const visit = node => {
      // Hook reads become `undefined` (a hook field's own assignment target stays).
      if (ts.isExpression(node) && isHookRead(node) && !isAssignmentTarget(node)) {
        if (ts.isIdentifier(node) && !isValuePosition(node)) return node;
        site(node);
        return f.createIdentifier('undefined');
      }
      if (
        ts.isCallExpression(node) &&
        ts.isIdentifier(node.expression) &&
        LOADER_CALLS.has(node.expression.text)
      ) {
        site(node);
        return f.createCallExpression(
          f.createPropertyAccessExpression(f.createIdentifier('Promise'), 'resolve'),
          undefined,
          [],
        );
      }
      const visited = ts.visitEachChild(node, visit, context);
      return fold(visited);
    };
    return root => ts.visitNode(root, visit);
  };
  const result = ts.transform(file, [transformer]);
  const out = result.transformed[0];
  const code = ts.createPrinter({ newLine: ts.NewLineKind.LineFeed }).printFile(out);
  result.dispose();

  // What is left must be no hook at all: a read that was not folded means a
  // new kind of hook site, to be taught here rather than measured half-stripped.
  const check = ts.createSourceFile(fileName, code, ts.ScriptTarget.ES2022, true);
  const left = [];
  const scan = node => {
    const assignedField =
      ts.isPropertyAccessExpression(node) &&
      HOOK_PROPERTIES.has(node.name.text) &&
      isAssignmentTarget(node);
    if (
      (ts.isExpression(node) &&
        isHookRead(node) &&
        !(ts.isIdentifier(node) && !isValuePosition(node))) ||
      assignedField ||
      (ts.isCallExpression(node) &&
        ts.isIdentifier(node.expression) &&
        LOADER_CALLS.has(node.expression.text)) ||
      (ts.isIdentifier(node) && node.text === 'undefined' && isFoldable(node))
    ) {
      const line = check.getLineAndCharacterOfPosition(node.getStart(check)).line + 1;
      left.push(`${fileName}:${line} (stripped text): ${node.parent.getText(check).slice(0, 120)}`);
    }
    ts.forEachChild(node, scan);
  };
  /** An `undefined` the folds should have removed: the operand of ?., !, a condition. */
  const isFoldable = node => {
    const p = node.parent;
    if (!p) return false;
    if ((ts.isPropertyAccessExpression(p) || ts.isCallExpression(p)) && p.expression === node)
      return true;
    if (ts.isConditionalExpression(p) && p.condition === node) return true;
    if (ts.isIfStatement(p) && p.expression === node) return true;
    return ts.isPrefixUnaryExpression(p) && p.operand === node;
  };
  scan(check);
  if (left.length > 0)
    throw new Error(
      `otel-strip: cannot compile out every telemetry hook; teach bench/harness/otel-strip.mjs:\n  ${left.join('\n  ')}`,
    );
  return { code: sites.length > 0 ? code : source, sites };
}

function* tsFiles(dir, rel = '') {
  for (const entry of readdirSync(path.join(dir, rel), { withFileTypes: true })) {
    const child = rel ? `${rel}/${entry.name}` : entry.name;
    if (entry.isDirectory()) yield* tsFiles(dir, child);
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) yield child;
  }
}

/**
 * Strips every lib/**\/*.ts of `root` in memory.
 * @returns per file changed, its new text and the sites folded.
 */
export function stripLib(root) {
  const ts = require(require.resolve('typescript', { paths: [root] }));
  const changed = [];
  for (const rel of tsFiles(path.join(root, 'lib'))) {
    const name = `lib/${rel}`;
    if (KEEP.some(pattern => pattern.test(name))) continue;
    const source = readFileSync(path.join(root, name), 'utf8');
    const { code, sites } = stripTelemetry(source, name, ts);
    if (sites.length > 0) changed.push({ name, code, sites });
  }
  return changed;
}

/**
 * Copies `root` (without .git and node_modules, which is linked) to a new
 * temporary directory with the telemetry compiled out of lib/.
 * @returns the directory and the files changed with their folded sites.
 */
export function buildStrippedTree(checkout) {
  const root = path.resolve(checkout);
  const changed = stripLib(root);
  const dest = mkdtempSync(path.join(os.tmpdir(), 'nest-herald-stripped-'));
  cpSync(root, dest, {
    recursive: true,
    filter: source => {
      const rel = path.relative(root, source);
      return rel !== '.git' && rel !== 'node_modules' && !rel.startsWith(`node_modules${path.sep}`);
    },
  });
  symlinkSync(path.join(root, 'node_modules'), path.join(dest, 'node_modules'), 'dir');
  for (const { name, code } of changed) writeFileSync(path.join(dest, name), code);
  return { dir: dest, changed };
}

// `node bench/harness/otel-strip.mjs [root]`: the sites it folds, file by file.
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const root = path.resolve(
    process.argv[2] ?? path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..'),
  );
  for (const { name, sites } of stripLib(root)) {
    console.log(`${name}: ${sites.length} hook site(s)`);
    for (const s of sites) console.log(`  ${s.line}: ${s.text}`);
  }
}
