/**
 * The directory that bare names live in, which only its user can enter: made with mode 0700, or,
 * when it exists, checked with `lstat` to be a real directory (not a symlink), owned by this
 * user, with no group or other bits. Anything else is refused and nothing is created, because a
 * directory that another user can write lets them put their own socket under our name.
 *
 * @module
 */
import { PipeError } from "../core/errors.ts";
import { posixErrno } from "../core/posix_errors.ts";
import { chmod, errorCode, lstat, mkdir, uid } from "./system.ts";

/**
 * Makes sure `dir` is private. With `create`, a missing directory is made (its parent must
 * exist); without, a missing one is left for the caller to report (`ENOENT`). Throws a
 * {@link PipeError} `EACCES` that says what is wrong.
 */
export function ensurePrivateDir(dir: string, create: boolean, where: string): void {
  let st = lstat(dir);
  if (!st && create) {
    try {
      mkdir(dir, 0o700);
      chmod(dir, 0o700); // mkdir's mode is narrowed by the umask, never widened; say it exactly
    } catch (e) {
      if (errorCode(e) !== "EEXIST") throw e; // another process made it first: checked below
    }
    st = lstat(dir);
  }
  if (!st) return;
  const problem = st.isSymbolicLink()
    ? "is a symbolic link"
    : !st.isDirectory()
    ? "is not a directory"
    : st.uid !== uid()
    ? `belongs to uid ${st.uid}, not to this user (uid ${uid()})`
    : (st.mode & 0o077) !== 0
    ? `has mode ${(st.mode & 0o777).toString(8).padStart(4, "0")}, open to group or others`
    : undefined;
  if (problem) {
    throw new PipeError({
      errno: posixErrno("EACCES"),
      code: "EACCES",
      syscall: "lstat",
      path: dir,
      detail: `${where}: the private directory for bare names ${problem}; winpipe uses it only `
        + "when it is a real directory of this user's with mode 0700, and creates nothing else. "
        + "Remove it, or give a full socket path",
    });
  }
}
