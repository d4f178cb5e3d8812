// package-lock.json kept in step with package.json, so that `npm install` on a fresh clone leaves
// it as it is: its root package (name, version, license, bin, engines, the dependency specs), each
// pinned dependency locked at its pin, and package.json's allowScripts naming exactly the locked
// packages that have install scripts (npm 11 warns about each one that is not).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..");
const json = (f: string) => JSON.parse(readFileSync(join(repo, f), "utf8"));
const pkg = json("package.json");
const lock = json("package-lock.json");
const root = lock.packages?.[""] ?? {};

const DEPS = ["dependencies", "devDependencies", "optionalDependencies", "peerDependencies"];

/** package.json's `bin` as npm writes it in the lockfile: an object, paths without "./". */
function lockedBin(bin: unknown): Record<string, string> | undefined {
  if (bin === undefined) return undefined;
  const entries = typeof bin === "string"
    ? [[pkg.name, bin]]
    : Object.entries(bin as Record<string, string>);
  return Object.fromEntries(entries.map(([k, v]) => [k, v.replace(/^(\.\/)+/, "")]));
}

test("package-lock.json's root package is package.json's", () => {
  assert.equal(lock.name, pkg.name, "name");
  assert.equal(lock.version, pkg.version, "version");
  assert.equal(root.name, pkg.name, 'packages[""].name');
  assert.equal(root.version, pkg.version, 'packages[""].version');
  assert.equal(root.license, pkg.license, 'packages[""].license');
  assert.deepEqual(root.bin, lockedBin(pkg.bin), 'packages[""].bin');
  assert.deepEqual(root.engines, pkg.engines, 'packages[""].engines');
  for (const field of DEPS) {
    assert.deepEqual(root[field], pkg[field], `packages[""].${field}`);
  }
});

test("every dependency is pinned, and locked at its pin", () => {
  for (const field of DEPS) {
    for (const [name, spec] of Object.entries<string>(pkg[field] ?? {})) {
      assert.match(spec, /^\d+\.\d+\.\d+$/, `${field}.${name} is an exact version`);
      const locked = lock.packages[`node_modules/${name}`];
      assert.ok(locked, `node_modules/${name} is in the lockfile`);
      assert.equal(locked.version, spec, `the locked ${name}`);
    }
  }
});

test("allowScripts approves exactly the locked packages with install scripts, by name", () => {
  const withScripts = Object.entries<{ hasInstallScript?: boolean }>(lock.packages)
    .filter(([path, entry]) => path !== "" && entry.hasInstallScript)
    .map(([path]) => path.slice(path.lastIndexOf("node_modules/") + "node_modules/".length));
  const allowed = pkg.allowScripts ?? {};
  assert.deepEqual(Object.keys(allowed).sort(), [...new Set(withScripts)].sort());
  // By name: the lockfile has no "resolved" addresses, and without one npm cannot check the
  // version of a pinned `name@version` entry, so it treats that package as unreviewed.
  for (const [name, value] of Object.entries(allowed)) {
    assert.equal(value, true, `allowScripts.${name}`);
  }
});
