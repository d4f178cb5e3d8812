// Every TypeScript example in README.md and docs/*.md is run by a test: each block appears, line for line, in
// a file that a Windows suite runs (examples/, tests/win/readme/, tests/win/peers/inherited.ts).
// Only the import specifier may differ ("@winpipe/winpipe" or "winpipe" there, a relative path to
// mod.ts here), and indentation. The server part of the echo pair is also, but for the pipe's name,
// tests/win/peers/echo_server.ts, which tests/win/echo_server.test.ts runs against clients that
// misbehave.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

const RUN_BY_TESTS = [
  ...readdirSync("examples").map((f) => join("examples", f)),
  ...readdirSync(join("tests", "win", "readme")).map((f) => join("tests", "win", "readme", f)),
  join("tests", "win", "peers", "inherited.ts"),
  ...readdirSync(join("tests", "readme")).map((f) => join("tests", "readme", f)),
];

/**
 * Lines, trimmed, blank ones dropped, with every winpipe import specifier made the same, and each
 * run of import lines sorted (the formatter orders imports by specifier, which differs).
 */
function normalize(text: string): string[] {
  const lines = text.split("\n")
    .map((l) =>
      l.trim()
        .replace(/from "(@winpipe\/winpipe|winpipe|(\.\.\/)+mod\.ts)"/, 'from "winpipe"')
        .replace(
          /from "(@winpipe\/winpipe\/http|winpipe\/http|(\.\.\/)+http\/mod\.ts)"/,
          'from "winpipe/http"',
        )
    )
    .filter((l) => l !== "");
  const out: string[] = [];
  for (let i = 0; i < lines.length;) {
    if (!lines[i].startsWith("import ")) {
      out.push(lines[i++]);
      continue;
    }
    const run: string[] = [];
    while (i < lines.length && lines[i].startsWith("import ")) run.push(lines[i++]);
    out.push(...run.sort());
  }
  return out;
}

function contains(haystack: string[], needle: string[]): boolean {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return true;
  }
  return false;
}

export function readmeBlocks(readme: string): string[] {
  return [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]);
}

/** The front page and the long material in docs/. */
const DOCS = [
  "README.md",
  ...readdirSync("docs").filter((f) => f.endsWith(".md")).map((f) => join("docs", f)),
];

test("every ts block in README.md and docs/*.md is in a file that a test runs", () => {
  const files = RUN_BY_TESTS.map((f) => ({ f, lines: normalize(readFileSync(f, "utf8")) }));
  const blocks = DOCS.flatMap((d) => readmeBlocks(readFileSync(d, "utf8")).map((b) => ({ d, b })));
  assert.ok(blocks.length >= 10, `only ${blocks.length} blocks found`);
  const missing = blocks.filter(({ b }) =>
    !files.some(({ lines }) => contains(lines, normalize(b)))
  );
  assert.deepEqual(missing, [], "blocks that no test runs");
});

test("the check catches a README block that no test runs", () => {
  const files = RUN_BY_TESTS.map((f) => normalize(readFileSync(f, "utf8")));
  const invented = normalize('const w = await PipeWriter.open("nowhere");\nw.write("x");');
  assert.equal(files.some((lines) => contains(lines, invented)), false);
});

/**
 * The server part of the README's echo pair ("Clients and servers"): from its "// The server."
 * comment to the `})();` that ends the accept loop, with the pipe's name in `listen()` left out.
 */
function echoServerPart(lines: string[]): string[] {
  const from = lines.findIndex((l) => l.startsWith("// The server."));
  const to = lines.indexOf("})();", from);
  return lines.slice(from, to + 1).map(withoutPipeName);
}

const withoutPipeName = (line: string) =>
  line.replace(/^const server = listen\(.*\);$/, "const server = listen(NAME);");

test("the README's echo server is tests/win/peers/echo_server.ts, but for the pipe's name", () => {
  const block = readmeBlocks(readFileSync("README.md", "utf8"))
    .find((b) => b.includes("conn.readable.pipeTo(conn.writable)") && b.includes("releaseLock()"));
  assert.ok(block, "the README's echo pair");
  const server = echoServerPart(normalize(block));
  assert.ok(server.length >= 8 && server.at(-1) === "})();", `found: ${server.join("\n")}`);
  const peer = normalize(readFileSync(join("tests", "win", "peers", "echo_server.ts"), "utf8"))
    .map(withoutPipeName);
  assert.ok(contains(peer, server), "tests/win/peers/echo_server.ts differs from the README");
  // A changed line is caught.
  const changed = server.map((l) => l.replace(".catch(console.error)", ".catch(() => {})"));
  assert.equal(contains(peer, changed), false);
});
