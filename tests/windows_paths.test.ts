// scripts/windows_paths.mjs, which scripts/test.mjs and scripts/demo.mjs use on Windows, checked
// on any OS: the runtimes' paths npm installs, the suites' environment, and cmd.exe quoting
// (round-tripped through models of cmd.exe's caret escapes and of CommandLineToArgvW).
import fc from "fast-check";
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  cmdLine,
  findRuntimes,
  quoteForCmd,
  runtimeCandidates,
  suiteEnv,
} from "../scripts/windows_paths.mjs";

const repo = String.raw`C:\Users\A B\src\winpipe`;
const nm = String.raw`C:\Users\A B\src\winpipe\node_modules`;

test("the runtimes npm installs: deno's package first, bun's platform package first", () => {
  assert.deepEqual(runtimeCandidates(repo, "x64"), {
    deno: [`${nm}\\deno\\deno.exe`, `${nm}\\@deno\\win32-x64\\deno.exe`],
    bun: [`${nm}\\@oven\\bun-windows-x64\\bin\\bun.exe`, `${nm}\\bun\\bin\\bun.exe`],
  });
  const arm = runtimeCandidates(repo, "arm64");
  assert.equal(arm.deno[1], `${nm}\\@deno\\win32-arm64\\deno.exe`);
  assert.equal(arm.bun[0], `${nm}\\@oven\\bun-windows-aarch64\\bin\\bun.exe`);
});

test("findRuntimes: after the postinstalls, before them, and with nothing installed", () => {
  const after = new Set([
    `${nm}\\deno\\deno.exe`,
    `${nm}\\@deno\\win32-x64\\deno.exe`,
    `${nm}\\bun\\bin\\bun.exe`, // bun's postinstall moved its platform package's copy here
  ]);
  assert.deepEqual(findRuntimes(repo, "x64", (p) => after.has(p)), {
    deno: `${nm}\\deno\\deno.exe`,
    bun: `${nm}\\bun\\bin\\bun.exe`,
  });
  const before = new Set([
    `${nm}\\@deno\\win32-x64\\deno.exe`,
    `${nm}\\@oven\\bun-windows-x64\\bin\\bun.exe`,
    `${nm}\\bun\\bin\\bun.exe`, // the placeholder, not a program
  ]);
  assert.deepEqual(findRuntimes(repo, "x64", (p) => before.has(p)), {
    deno: `${nm}\\@deno\\win32-x64\\deno.exe`,
    bun: `${nm}\\@oven\\bun-windows-x64\\bin\\bun.exe`,
  });
  assert.deepEqual(findRuntimes(repo, "x64", () => false), { deno: null, bun: null });
});

test("suiteEnv: the three variables, keeping values already set, leaving out what is missing", () => {
  const node = String.raw`C:\Program Files\nodejs\node.exe`;
  assert.deepEqual(suiteEnv({ node, deno: "D", bun: "B" }, {}), {
    WINPIPE_NODE: node,
    WINPIPE_DENO: "D",
    WINPIPE_BUN: "B",
  });
  assert.deepEqual(suiteEnv({ node, deno: "D", bun: null }, { WINPIPE_DENO: "mine" }), {
    WINPIPE_NODE: node,
    WINPIPE_DENO: "mine",
  });
});

test("quoteForCmd: plain arguments stay as they are; others are quoted and caret-escaped", () => {
  for (const plain of ["run", "build", "-A", "--timeout", "tests/win/", String.raw`C:\a\b.ts`]) {
    assert.equal(quoteForCmd(plain), plain);
    assert.equal(quoteForCmd(plain, { batch: true }), plain);
  }
  assert.equal(quoteForCmd(""), '^"^"');
  assert.equal(quoteForCmd("a b"), '^"a^ b^"');
  // A trailing backslash is doubled (the closing quote follows it); a backslash before a quote
  // too, and the quote escaped.
  assert.equal(quoteForCmd("C:\\A B\\"), '^"C:\\A^ B\\\\^"');
  assert.equal(quoteForCmd('say \\"hi"'), '^"say^ \\\\\\^"hi\\^"^"');
  assert.equal(quoteForCmd("a&b|c"), '^"a^&b^|c^"');
  assert.equal(quoteForCmd("%PATH%"), '^"^%PATH^%^"');
  assert.equal(quoteForCmd("a b", { batch: true }), '^^^"a^^^ b^^^"');
  assert.equal(cmdLine("npm", ["run", "build"], { batch: true }), "npm run build");
  assert.equal(cmdLine("my tool", ["x y"]), 'my^ tool ^"x^ y^"');
  for (const bad of ["a\nb", "a\rb", "a\0b"]) {
    assert.throws(() => quoteForCmd(bad), TypeError);
  }
});

/**
 * cmd.exe's reading of a line in which every special character should be escaped: `^x` is `x`,
 * and an unescaped special character (one cmd.exe would act on) is a failure.
 */
function cmdPass(line: string): string {
  let out = "";
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (c === "^") {
      assert.ok(i + 1 < line.length, `a caret ends ${JSON.stringify(line)}`);
      out += line[++i];
    } else {
      assert.ok(!'"&|<>()%!'.includes(c), `unescaped ${c} in ${JSON.stringify(line)}`);
      out += c;
    }
  }
  return out;
}

/** The arguments CommandLineToArgvW (and the C runtime) reads from a command line's tail. */
function parseArgs(line: string): string[] {
  const args: string[] = [];
  let i = 0;
  for (;;) {
    while (line[i] === " " || line[i] === "\t") i++;
    if (i >= line.length) return args;
    let arg = "";
    let quoted = false;
    while (i < line.length) {
      const c = line[i];
      if (c === "\\") {
        // Backslashes are literal unless a quote follows: then each pair is one backslash, and an
        // odd one escapes the quote.
        let n = 0;
        while (line[i] === "\\") {
          n++;
          i++;
        }
        arg += "\\".repeat(line[i] === '"' ? n >> 1 : n);
        if (line[i] === '"' && n % 2 === 1) {
          arg += '"';
          i++;
        }
      } else if (c === '"') {
        // Inside quotes, "" is a quote (the C runtime since 2008); otherwise a quote toggles.
        if (quoted && line[i + 1] === '"') {
          arg += '"';
          i += 2;
        } else {
          quoted = !quoted;
          i++;
        }
      } else if (!quoted && (c === " " || c === "\t")) {
        break;
      } else {
        arg += c;
        i++;
      }
    }
    args.push(arg);
  }
}

test("quoteForCmd round trip: cmd.exe (once, or twice for a batch file), then the program's parser", () => {
  const unit = fc.oneof(
    fc.constantFrom(..." \t\"\\^&|<>()%!;,=*?[]`'@-/:.", "a", "Z", "0", "é", "€", "\u{1F600}"),
    fc.string({ unit: "binary", maxLength: 1 }).filter((s) => !/[\r\n\0]/.test(s)),
  );
  const args = fc.array(fc.string({ unit, maxLength: 12 }), { minLength: 1, maxLength: 5 });
  fc.assert(
    fc.property(args, fc.boolean(), (argv, batch) => {
      let line = argv.map((a) => quoteForCmd(a, { batch })).join(" ");
      line = cmdPass(line);
      if (batch) line = cmdPass(line);
      assert.deepEqual(parseArgs(line), argv);
    }),
    { seed: 20261122, numRuns: 2000 },
  );
});
