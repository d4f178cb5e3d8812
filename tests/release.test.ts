// The release's conventions, checked where they can drift: one set of tested versions
// (scripts/versions.json) that package.json agrees with, one version number in package.json,
// deno.json and CHANGELOG.md, clean `deno doc --lint` and `deno publish --dry-run`, and JSDoc
// examples that type-check.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { test } from "node:test";

const json = (f: string) => JSON.parse(readFileSync(f, "utf8"));
const pkg = json("package.json");
const tested = json(join("scripts", "versions.json")) as Record<string, string>;

/** `a >= b` for dotted versions. */
function atLeast(a: string, b: string): boolean {
  const x = a.split(".").map(Number), y = b.split(".").map(Number);
  for (let i = 0; i < 3; i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) > (y[i] ?? 0);
  return true;
}

test("the tested runtimes are the devDependencies, and engines allow them", () => {
  for (const runtime of ["deno", "bun"]) {
    assert.equal(pkg.devDependencies[runtime], tested[runtime], `devDependencies.${runtime}`);
    const m = /^>=(\d+\.\d+\.\d+)$/.exec(pkg.engines?.[runtime] ?? "");
    assert.ok(m, `engines.${runtime} is ">=x.y.z"`);
    assert.ok(atLeast(tested[runtime], m[1]), `${runtime} ${tested[runtime]} is below engines`);
  }
});

test("the README's table of versions says what versions.json and engines say", () => {
  const readme = readFileSync("README.md", "utf8");
  for (const [runtime, name] of [["deno", "Deno"], ["bun", "Bun"]]) {
    const row = readme.match(new RegExp(`^\\| ${name} +\\| ([^|]+)\\| ([^|]+)\\|$`, "m"));
    assert.ok(row, `a row for ${name}`);
    assert.equal(row[1].trim(), tested[runtime]);
    assert.ok(row[2].trim().startsWith(pkg.engines[runtime].slice(2)), `${name}'s minimum`);
  }
});

test("one version: package.json, deno.json, and a CHANGELOG.md entry", () => {
  assert.equal(json("deno.json").version, pkg.version);
  assert.match(readFileSync("CHANGELOG.md", "utf8"), new RegExp(`^## ${pkg.version}\\b`, "m"));
});

const deno = join("node_modules", ".bin", process.platform === "win32" ? "deno.cmd" : "deno");

function denoRun(args: string[]) {
  const r = spawnSync(deno, args, {
    encoding: "utf8",
    env: { ...process.env, NO_COLOR: "1" },
    shell: process.platform === "win32",
  });
  return { code: r.status, output: `${r.stdout}${r.stderr}` };
}

test("deno doc --lint is clean (no warnings, bun-types included)", () => {
  const r = denoRun(["doc", "--lint", "mod.ts", "cli.ts", "http/mod.ts"]);
  assert.equal(r.code, 0, r.output);
  assert.doesNotMatch(r.output, /warning|error/i);
});

test("every JSDoc example type-checks as a program of its own (deno check --doc)", () => {
  // The published modules whose comments hold examples; each example is checked on its own, so
  // it must import and make what it uses (a snippet on an undeclared `conn` fails here).
  const files = [
    "mod.ts",
    "cli.ts",
    ...["core", "windows", "http", "posix", "ffi"].flatMap((d) =>
      readdirSync(d).filter((f) => f.endsWith(".ts")).map((f) => join(d, f))
    ),
  ].filter((f) => readFileSync(f, "utf8").includes("@example"));
  assert.ok(files.length >= 10, `only ${files.length} files with examples: ${files}`);
  const r = denoRun(["check", "--doc", ...files]);
  assert.equal(r.code, 0, r.output);
  assert.match(r.output, /#\d+-\d+\.ts/, "no example was checked");
});

test("deno publish --dry-run is clean", () => {
  const r = denoRun(["publish", "--dry-run", "--allow-dirty"]);
  assert.equal(r.code, 0, r.output);
  assert.doesNotMatch(r.output, /warning/i);
  assert.match(r.output, /Success Dry run complete/);
});
