// The npm package as a user gets it: the tarball that `npm pack` makes (scripts/test.mjs packs it
// into .tmp/pack/ before the Windows suites; `prepack` builds dist/) is installed into a scratch
// project by npm for Windows (npm's own npm-cli.js run by node.exe: .cmd shims and all), then
// `import … from "winpipe"` runs in bun.exe and in the runtime under test, and the `winpipe` bin
// runs through `bun x`. (`bun install` itself stops at "cannot access tempdir" under Wine.)
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, dirname, join, resolve } from "node:path";
import process from "node:process";
import { test } from "node:test";
import { run, scriptCommand } from "./child.ts";
import { ServerEnd, uniqueName, within } from "./server_end.ts";

const version = JSON.parse(readFileSync("package.json", "utf8")).version as string;
const tarball = resolve(".tmp", "pack", `winpipe-${version}.tgz`);
const bun = process.versions.bun ? process.execPath : process.env.WINPIPE_BUN || "bun";
const node = process.env.WINPIPE_NODE || "node";
// npm's CLI: under Wine, the copy scripts/test.mjs puts in .tmp/npm (the Linux one is outside the
// root); natively, the one running `npm test` (npm_execpath).
const npmCli = existsSync(resolve(".tmp", "npm", "bin", "npm-cli.js"))
  ? resolve(".tmp", "npm", "bin", "npm-cli.js")
  : process.env.npm_execpath;
const LIMIT = 120_000;

const USE = `import { PipeError, PipeWriter } from "winpipe";
const [name] = process.argv.slice(2);
const w = await PipeWriter.open(name, { timeout: 10_000 });
w.write("from the installed package");
await w.close();
try {
  await PipeWriter.open(name + "-nobody");
} catch (e) {
  console.log(e instanceof PipeError, e.code, e.errno);
}
`;

test("the packed tarball installs with npm and works from a scratch project", async () => {
  assert.ok(
    existsSync(tarball),
    `${tarball} is missing: npm test packs it first (or: npm pack --pack-destination .tmp/pack)`,
  );
  assert.ok(npmCli, "no npm-cli.js: run this suite through npm test");
  const dir = mkdtempSync(join(tmpdir(), "winpipe-package-"));
  try {
    writeFileSync(
      join(dir, "package.json"),
      JSON.stringify({
        name: "scratch",
        private: true,
        type: "module",
      }),
    );
    writeFileSync(join(dir, "use.ts"), USE);
    // Offline: the tarball has no dependencies, so nothing may be fetched.
    // bun on PATH, as a Bun user has it: the bin's .cmd shim runs `bun` (cli.js's shebang).
    // (Windows' environment is case-insensitive: drop "Path" so that only one PATH is passed.)
    const pathKey = Object.keys(process.env).find((k) => k.toUpperCase() === "PATH");
    const env: Record<string, string | undefined> = { ...process.env };
    if (pathKey) delete env[pathKey];
    env.PATH = `${dirname(bun)}${delimiter}${pathKey ? process.env[pathKey] : ""}`;
    env.npm_config_cache = join(dir, ".npm-cache");
    const inProject = { cwd: dir, env };
    const npmArgs = [npmCli!, "install", "--offline", "--no-audit", "--no-fund", tarball];
    const install = await run(node, npmArgs, dir, LIMIT, inProject);
    assert.equal(install.code, 0, `npm install: ${install.stdout}${install.stderr}`);
    assert.ok(existsSync(join(dir, "node_modules", ".bin", "winpipe.cmd")), "the bin's shim");
    const installed = JSON.parse(
      readFileSync(join(dir, "node_modules", "winpipe", "package.json"), "utf8"),
    );
    assert.equal(installed.version, version);
    assert.ok(existsSync(join(dir, "node_modules", "winpipe", "dist", "mod.js")), "dist/ shipped");

    // import … from "winpipe", in bun.exe and in the runtime under test (Deno resolves it from
    // the project's node_modules, through its package.json).
    const runners: [string, string, string[]][] = [["bun.exe", bun, ["use.ts"]]];
    if (!process.versions.bun) {
      const [deno, args] = scriptCommand("use.ts", ["--allow-ffi", "--allow-read"]);
      runners.push(["deno.exe", deno, args]);
    }
    for (const [label, exe, args] of runners) {
      const name = uniqueName("package");
      const server = ServerEnd.create(name);
      const connected = server.connect();
      const used = run(exe, [...args, name], dir, LIMIT, inProject);
      await within(LIMIT, connected);
      const got = new TextDecoder().decode((await within(LIMIT, server.read()))!);
      await server.close();
      const r = await used;
      assert.equal(r.code, 0, `${label} use.ts: ${r.stdout}${r.stderr}`);
      assert.equal(got, "from the installed package", label);
      assert.equal(r.stdout.trim(), "true ERROR_FILE_NOT_FOUND 2", label);
    }

    // The bin, as `bun x winpipe` finds it in the project.
    const help = await run(bun, ["x", "winpipe", "--help"], dir, LIMIT, inProject);
    assert.equal(help.code, 0, `bun x winpipe --help: ${help.stdout}${help.stderr}`);
    assert.match(help.stdout + help.stderr, /winpipe send/);
    const bad = await run(
      bun,
      ["x", "winpipe", "send", String.raw`\\.\pipe\a/b`],
      dir,
      LIMIT,
      inProject,
    );
    assert.equal(bad.code, 2, `a bad name is a usage error: ${bad.stdout}${bad.stderr}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
