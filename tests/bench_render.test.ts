// The guard that ends `npm run bench` (bench/render.mjs): it must name every cell where winpipe
// is below the best peer or below 0.9x its runtime's hop alone, keep the C reference apart, say
// so when there is none, and read the chosen constants against their neighbours from `deno
// bench`'s text. Synthetic figures: runs on any OS, with no bench run.
import assert from "node:assert/strict";
import { test } from "node:test";

interface Rendered {
  markdown: string;
  behind: string[];
  reference: string[];
  /** What `npm run bench` prints at the end. */
  guard: string;
}
interface RenderModule {
  render(results: unknown, ipc: unknown, denoBench: string, bunBench: string): Rendered;
  neighbourLines(denoBench: string): { group: string; flagged: boolean; line: string }[];
}
const modulePath = "../bench/render.mjs"; // plain JS, no types to check
const { render, neighbourLines } = (await import(modulePath)) as RenderModule;

const KiB = 1024;
const writers = ["winpipe (Deno)", "winpipe (Bun)", "node net", "C, 2 writes in flight"];
/** One chunk size, three rounds of each writer at `mbps[writer]` (the middle one the median). */
function results(mbps: Record<string, number>) {
  return {
    totalMiB: 32,
    rounds: 3,
    chunkSizes: [64 * KiB],
    writers,
    sink: "C",
    c: { compiler: "cc" },
    versions: { deno: "deno x", bun: "x", node: "x" },
    runs: writers.flatMap((writer) =>
      [0.9, 1, 1.1].map((f, round) => ({ writer, chunk: 64 * KiB, round, mbps: mbps[writer] * f }))
    ),
  };
}
function ipc(rt: Record<string, number>) {
  const impls = Object.keys(rt);
  return {
    rounds: 1,
    roundTrips: 2000,
    totalMiB: 32,
    chunkSizes: [],
    parts: "rt",
    impls,
    readers: [],
    source: "C, 2 writes in flight",
    rt: impls.map((impl) => ({ impl, round: 0, value: rt[impl] })),
    reads: [],
  };
}
/** The rendering of one chunk size's writes and one round-trip table, with no `deno bench` text. */
const rendered = (writes: Record<string, number>, rt: Record<string, number>) =>
  render(results(writes), ipc(rt), "", "");
const ahead = {
  "winpipe (Deno)": 1000,
  "winpipe (Bun)": 1000,
  "node net": 900,
  "hop alone (Deno)": 1050,
  "hop alone (Bun)": 1050,
};

test("a winpipe cell below the best peer is named, with its ratio; the C reference is apart", () => {
  const r = rendered(
    {
      "winpipe (Deno)": 100,
      "winpipe (Bun)": 300,
      "node net": 200,
      "C, 2 writes in flight": 400,
    },
    ahead,
  );
  assert.deepEqual(r.behind, [
    "64 KiB write, winpipe (Deno): 100.0 MB/s, 0.50× best peer node net (200.0)",
  ]);
  assert.equal(r.reference.length, 2); // both winpipes are below C: information only
  assert.ok(r.reference.every((l) => l.includes("the C reference")));
  assert.ok(r.markdown.includes("## Where winpipe is behind"));
  assert.ok(r.guard.includes(r.behind[0]));
});

test("round trips below the best peer, or below 0.9x the runtime's hop alone, are named", () => {
  const r = rendered(
    {
      "winpipe (Deno)": 300,
      "winpipe (Bun)": 300,
      "node net": 200,
      "C, 2 writes in flight": 200,
    },
    { ...ahead, "winpipe (Deno)": 850, "hop alone (Deno)": 1000 },
  );
  assert.equal(r.behind.length, 2);
  assert.match(r.behind[0], /^round trips, winpipe \(Deno\): 850\/s, 0\.94× best peer node net/);
  assert.match(r.behind[1], /0\.85× hop alone \(Deno\) \(1000\), below 0\.9× of it$/);
});

test("with winpipe at or above every peer, the guard says so", () => {
  const r = rendered(
    {
      "winpipe (Deno)": 300,
      "winpipe (Bun)": 300,
      "node net": 200,
      "C, 2 writes in flight": 250,
    },
    ahead,
  );
  assert.deepEqual(r.behind, []);
  assert.deepEqual(r.reference, []);
  assert.ok(r.guard.includes("at or above the best peer in every cell"));
});

/** `deno bench` text for one group: rows of name and average time, then its summary. */
const group = (name: string, rows: [string, number][], head: string) =>
  [
    `group ${name}`,
    ...rows.map(([n, ms]) => `| ${n} | ${ms} ms | 1.0 | ( ${ms} ms … ${ms} ms) | x | x | x |`),
    "",
    "summary",
    `  ${head}`,
    "     1.00x faster than something",
    "",
  ].join("\n");

test("the chosen constants against their neighbours: flagged past 10%, not within it", () => {
  const text = group("largest write", [
    ["largest write 256 KiB: 16 MiB in 1 MiB chunks", 95.0],
    ["largest write 1024 KiB (chosen): 16 MiB in 1 MiB chunks", 328.9],
  ], "largest write 1024 KiB (chosen): 16 MiB in 1 MiB chunks")
    + "\n" + group("high-water mark", [
      ["high-water mark 1024 KiB (chosen): 16 MiB in 256 B chunks", 70.0],
      ["high-water mark 4096 KiB: 16 MiB in 256 B chunks", 66.0],
    ], "high-water mark 1024 KiB (chosen): 16 MiB in 256 B chunks");
  const [largest, mark] = neighbourLines(text);
  assert.equal(largest.flagged, true);
  assert.equal(
    largest.line,
    "largest write: chosen 1024 KiB 328.9 ms; fastest 256 KiB 95.0 ms (3.46× faster): this machine disagrees",
  );
  assert.equal(mark.flagged, false); // 70 / 66 = 1.06
  assert.match(mark.line, /within 10%, the choice stands$/);
  assert.deepEqual(neighbourLines("").map((l) => l.line), [
    "largest write: not run",
    "high-water mark: not run",
  ]);
});
