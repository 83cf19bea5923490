#!/usr/bin/env node
// Packs the package as it is published: `npm run package [-- --destination
// DIR] [-- --no-build]`. Prints the tarball's absolute path as its last line.
//
// Why a staged copy and not prepack/postpack rewriting package.json: npm
// publish reads the manifest again AFTER postpack to send it to the registry,
// so a manifest restored by postpack would publish the development scripts in
// the registry's metadata anyway, and a pack that fails half-way leaves the
// repository's package.json rewritten. Here the repository's package.json is
// never touched: the files of `files` are copied to a temporary directory with
// a manifest without `scripts`, `devDependencies` and `allowScripts` (users
// build nothing; npm warns about install scripts it sees), and packed there.
// The repository's own `prepack` refuses `npm pack`/`npm publish` from the
// checkout (`--refuse`), which would ship the development manifest.
import { execFileSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);

if (args.includes('--refuse')) {
  console.error(
    'nest-herald: `npm pack` / `npm publish` from the checkout would ship the development ' +
      'manifest (scripts, devDependencies). Run `npm run package` (prints the path of a clean ' +
      'tarball), then `npm publish <that tarball>`.',
  );
  process.exit(1);
}

const option = name => {
  const at = args.indexOf(name);
  return at >= 0 ? args[at + 1] : undefined;
};
const destination = path.resolve(option('--destination') ?? process.cwd());

/** The manifest users install: what the package is and needs, nothing of its development. */
export function publishedManifest(manifest) {
  const published = { ...manifest };
  delete published.scripts;
  delete published.devDependencies;
  delete published.allowScripts;
  return published;
}

// The build's output goes to stderr: stdout is the tarball's path alone.
const quiet = { cwd: root, stdio: ['ignore', 2, 2] };
if (!args.includes('--no-build')) {
  execFileSync('npm', ['run', '--silent', 'build'], quiet);
  execFileSync(
    process.execPath,
    [path.join(root, 'scripts', 'build-native.mjs'), '--prebuild'],
    quiet,
  );
}
mkdirSync(destination, { recursive: true });

const manifest = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
const stage = mkdtempSync(path.join(os.tmpdir(), 'nest-herald-stage-'));
try {
  // npm adds README and LICENSE by itself; they must be in the staged copy.
  for (const entry of [...manifest.files, 'README.md', 'LICENSE']) {
    const from = path.join(root, entry);
    if (!existsSync(from))
      throw new Error(`pack: ${entry} (in "files") does not exist; build first`);
    cpSync(from, path.join(stage, entry), { recursive: true });
  }
  writeFileSync(
    path.join(stage, 'package.json'),
    `${JSON.stringify(publishedManifest(manifest), null, 2)}\n`,
  );
  const packed = JSON.parse(
    execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', destination], {
      cwd: stage,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    }),
  );
  console.log(path.join(destination, packed[0].filename));
} finally {
  rmSync(stage, { recursive: true, force: true });
}
