import { promises as fs, type Stats } from 'node:fs';
import { describeError } from '../../common/describe-error.js';
import net from 'node:net';
import path from 'node:path';
import { IpcSocketError } from './ipc.errors.js';

const uid = (): number | undefined =>
  typeof process.getuid === 'function' ? process.getuid() : undefined;

function errno(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}

function checkDirectory(dir: string, stats: Stats): void {
  if (stats.isSymbolicLink())
    throw new IpcSocketError(`socket directory ${dir} is a symlink; refusing to use it`);
  if (!stats.isDirectory()) throw new IpcSocketError(`socket directory ${dir} is not a directory`);
  const me = uid();
  if (me !== undefined && stats.uid !== me) {
    throw new IpcSocketError(
      `socket directory ${dir} is owned by uid ${stats.uid}, not by this process (uid ${me})`,
    );
  }
  if ((stats.mode & 0o077) !== 0) {
    throw new IpcSocketError(
      `socket directory ${dir} has mode 0${(stats.mode & 0o777).toString(8)}; other users could reach the socket: make it 0700`,
    );
  }
}

/**
 * Checks that the socket's directory is ours: owned by our uid, mode 0700,
 * not a symlink (lstat, so a link planted in its place is caught). With
 * `create`, a missing directory is made with mode 0700 first.
 * @returns false when the directory does not exist (and was not created).
 */
export async function checkSocketDirectory(socketPath: string, create: boolean): Promise<boolean> {
  const dir = path.dirname(socketPath);
  let stats: Stats;
  try {
    stats = await fs.lstat(dir);
  } catch (error) {
    if (errno(error) !== 'ENOENT')
      throw new IpcSocketError(`cannot inspect socket directory ${dir}: ${describeError(error)}`);
    if (!create) return false;
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    stats = await fs.lstat(dir);
  }
  checkDirectory(dir, stats);
  return true;
}

/** Checks the socket file a client is about to connect to. @returns false when it does not exist yet. */
export async function checkSocketFile(socketPath: string): Promise<boolean> {
  if (!(await checkSocketDirectory(socketPath, false))) return false;
  let stats: Stats;
  try {
    stats = await fs.lstat(socketPath);
  } catch (error) {
    if (errno(error) === 'ENOENT') return false;
    throw new IpcSocketError(`cannot inspect socket ${socketPath}: ${describeError(error)}`);
  }
  if (!stats.isSocket()) throw new IpcSocketError(`${socketPath} is not a socket`);
  const me = uid();
  if (me !== undefined && stats.uid !== me) {
    throw new IpcSocketError(
      `socket ${socketPath} is owned by uid ${stats.uid}, not by this process (uid ${me})`,
    );
  }
  return true;
}

/** True when something accepts connections on the socket. */
function probe(socketPath: string): Promise<boolean> {
  return new Promise(resolve => {
    const socket = net.connect(socketPath);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/**
 * Makes the path ready for `listen`: our directory (created 0700 if
 * missing); an existing socket file is probed, refused if a broker answers,
 * removed if stale (nobody listens); any other file is left alone and
 * refused.
 */
export async function prepareSocketPath(socketPath: string): Promise<void> {
  await checkSocketDirectory(socketPath, true);
  let stats: Stats;
  try {
    stats = await fs.lstat(socketPath);
  } catch (error) {
    if (errno(error) === 'ENOENT') return;
    throw new IpcSocketError(`cannot inspect socket ${socketPath}: ${describeError(error)}`);
  }
  if (!stats.isSocket()) {
    throw new IpcSocketError(`${socketPath} exists and is not a socket; refusing to replace it`);
  }
  if (await probe(socketPath))
    throw new IpcSocketError(`a broker is already listening on ${socketPath}`);
  try {
    await fs.unlink(socketPath);
  } catch (error) {
    if (errno(error) !== 'ENOENT')
      throw new IpcSocketError(`cannot remove stale socket ${socketPath}: ${describeError(error)}`);
  }
}

/** Restricts a freshly bound socket to this user. */
export async function secureSocket(socketPath: string): Promise<void> {
  await fs.chmod(socketPath, 0o600);
}

/**
 * Test hooks (for tests only; nothing in the package sets them). `afterBind`
 * runs between the bind and the chmod of a broker's socket, where a test
 * injects a delay to check that status ends right whatever the interleaving.
 * @internal
 */
export const ipcTestHooks: { afterBind?: (socketPath: string) => Promise<void> } = {};
