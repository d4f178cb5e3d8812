// The guard that ends `npm run bench` (bench/render.mjs): it must name every cell where winpipe
// is below the best peer or below 0.9x its runtime's hop alone, keep the C reference apart, say
// so when there is none, and read the chosen constants against their neighbours from `deno
// bench`'s text. On Unix sockets (bench/render_unix.mjs) it must name every cell below the goals,
// against the peers of winpipe's own runtime only. RESULTS.md keeps the part that did not run.
// Synthetic figures: runs on any OS, with no bench run.
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
  renderUnix(unix: unknown): Rendered;
  renderHttp(http: unknown): {
    markdown: string;
    behind: { name: string; ratio?: number }[];
    guard: string;
  };
  assemble(parts: { windows?: string; unix?: string; http?: string }, previous?: string): string;
  neighbourLines(denoBench: string): { group: string; flagged: boolean; line: string }[];
}
const modulePath = "../bench/render.mjs"; // plain JS, no types to check
const { render, renderUnix, renderHttp, assemble, neighbourLines } = (await import(
  modulePath
)) as RenderModule;

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

test("the slow reader's pass: its table, and a winpipe cell below Node's net named in the guard", () => {
  const slowRuns = Object.entries({ "winpipe (Deno)": 280, "winpipe (Bun)": 240, "node net": 260 })
    .flatMap(([writer, mbps]) =>
      [0.9, 1, 1.1].map((f, round) => ({ writer, chunk: 1024 * KiB, round, mbps: mbps * f }))
    );
  const withSlow = {
    ...results(ahead),
    slowSink: { name: "node net", chunk: 1024 * KiB, runs: slowRuns },
  };
  const r = render(withSlow, ipc(ahead), "", "");
  assert.match(r.markdown, /### 1 MiB writes into a reader that takes 64 KiB at a time/);
  assert.match(
    r.markdown,
    /\| 1 MiB \| 280\.0 \(1\.08×\) \[252 – 308\] \| 240\.0 \(0\.92×\) \[216 – 264\] \| 260\.0 \(1\.00×\)/,
  );
  assert.deepEqual(
    r.behind.filter((l) => l.includes("into node net")),
    ["1 MiB write into node net, winpipe (Bun): 240.0 MB/s, 0.92× best peer node net (260.0)"],
  );
  // Without the pass (WINPIPE_BENCH_SINK=node, or no 1 MiB chunks), no such section or line.
  const plain = render(results(ahead), ipc(ahead), "", "");
  assert.doesNotMatch(plain.markdown, /takes 64 KiB at a time/);
  assert.equal(plain.behind.filter((l) => l.includes("into node net")).length, 0);
});

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

/** The Unix part's implementations, as bench/compare_unix.mjs lists them. */
const unixImpls = [
  { name: "winpipe (Deno)", runtime: "Deno", kind: "winpipe" },
  { name: "Deno.connect", runtime: "Deno", kind: "own" },
  { name: "Deno node:net", runtime: "Deno", kind: "node:net" },
  { name: "winpipe (Bun)", runtime: "Bun", kind: "winpipe" },
  { name: "Bun.connect", runtime: "Bun", kind: "own" },
  { name: "Bun node:net", runtime: "Bun", kind: "node:net" },
  { name: "node net", runtime: "Node", kind: "node" },
  { name: "C", runtime: "C", kind: "C" },
];
type Figures = Record<string, number>;
/** Writes and reads at 256 B and 64 KiB, and round trips: three rounds of each at `f[impl]`. */
function unixResults(writes: Record<number, Figures>, reads: Record<number, Figures>, rt: Figures) {
  const rows = (by: Record<number, Figures>) =>
    Object.entries(by).flatMap(([chunk, f]) =>
      unixImpls.flatMap(({ name }) =>
        [0.9, 1, 1.1].map((k, round) => ({
          impl: name,
          chunk: Number(chunk),
          round,
          mbps: f[name] * k,
        }))
      )
    );
  return {
    date: "2026-01-02",
    platform: "linux",
    machine: { cpus: 2, model: "cpu", os: "linux x" },
    versions: { deno: "deno x", bun: "x", node: "x", cc: "cc" },
    rounds: 3,
    roundTrips: 20000,
    roundTripSize: 64,
    chunkSizes: [256, 64 * KiB],
    mibByChunk: { 256: 32, [64 * KiB]: 512 },
    impls: unixImpls,
    writes: rows(writes),
    reads: rows(reads),
    rt: unixImpls.flatMap(({ name }) =>
      [0.9, 1, 1.1].map((k, round) => ({ impl: name, round, value: rt[name] * k }))
    ),
  };
}
/** Every peer at 100 (C at 1000), winpipe at 400 (writes) or 100 (reads and round trips). */
const even = (winpipe: number): Figures =>
  Object.fromEntries(
    unixImpls.map((
      { name, kind },
    ) => [name, kind === "winpipe" ? winpipe : kind === "C" ? 1000 : 100]),
  );

test("Unix sockets: each cell below its goal is named, against the peers of its own runtime", () => {
  const r = renderUnix(unixResults(
    {
      // 256 B: 3x the best peer is the goal. Deno's 250 is 2.5x its best peer; Bun's 310 is
      // 3.1x its own (100), though Deno.connect, no peer of Bun's, is at 200.
      256: { ...even(400), "winpipe (Deno)": 250, "winpipe (Bun)": 310, "Deno.connect": 200 },
      [64 * KiB]: { ...even(120), "winpipe (Bun)": 90 }, // 64 KiB: 1x; Bun's 90 is 0.90x
    },
    // Reads: 1x at every size, even 256 B. Node's net is a peer in both runtimes.
    { 256: { ...even(100), "node net": 110 }, [64 * KiB]: even(100) },
    // Round trips: 0.95x the best own way; Node's net is no own way.
    { ...even(100), "winpipe (Deno)": 96, "winpipe (Bun)": 94, "node net": 500 },
  ));
  assert.deepEqual(r.behind, [
    "256 B write, winpipe (Deno): 250.0 MB/s, 1.25× the best peer Deno.connect (200.0); the goal is 3×",
    "64 KiB write, winpipe (Bun): 90.0 MB/s, 0.90× the best peer Bun.connect (100.0); the goal is 1×",
    "256 B read, winpipe (Deno): 100.0 MB/s, 0.91× the best peer node net (110.0); the goal is 1×",
    "256 B read, winpipe (Bun): 100.0 MB/s, 0.91× the best peer node net (110.0); the goal is 1×",
    "round trips, winpipe (Bun): 94/s, 0.94× the best peer Bun.connect (100); the goal is 0.95×",
  ]);
  assert.ok(r.reference.every((l) => l.includes("the C reference")));
  assert.ok(r.markdown.startsWith("## Unix sockets (Linux, natively), run on 2026-01-02"));
  assert.ok(r.markdown.includes("### Where winpipe is behind the goals (Linux)"));
  assert.ok(r.guard.includes(r.behind[0]));
});

test("Unix sockets: with every goal met, the guard says so", () => {
  const r = renderUnix(unixResults(
    { 256: even(300), [64 * KiB]: even(100) },
    { 256: even(100), [64 * KiB]: even(100) },
    { ...even(100), "winpipe (Deno)": 95, "winpipe (Bun)": 95 },
  ));
  assert.deepEqual(r.behind, []);
  assert.ok(r.guard.includes("winpipe meets every goal in every cell"));
});

test("Unix sockets: a failed winpipe cell is named", () => {
  const unix = unixResults(
    { 256: even(300), [64 * KiB]: even(100) },
    { 256: even(100), [64 * KiB]: even(100) },
    even(100),
  );
  unix.rt = unix.rt.map((r) => r.impl === "winpipe (Bun)" ? { ...r, value: undefined! } : r);
  assert.deepEqual(renderUnix(unix).behind, ["round trips, winpipe (Bun): failed (3/3 runs)"]);
});

test("RESULTS.md: one part run, the other kept as it was, with its date; the old layout read", () => {
  const old = [
    "# Benchmark results",
    "",
    "Generated by `npm run bench` (bench/compare.mjs) on 2026-12-06. Do not edit by hand: run it again.",
    "",
    "- Machine: x",
    "",
    "## Throughput by chunk size",
    "",
    "| 1 |",
    "",
    "## Where winpipe is behind",
    "",
    "- a cell",
  ].join("\n");
  const unix = "## Unix sockets (Linux, natively), run on 2026-12-07\n\n### Writes\n\nfigures";
  const both = assemble({ unix }, old);
  assert.ok(both.startsWith("# Benchmark results\n"));
  assert.ok(both.includes("## Windows named pipes, run on 2026-12-06\n\n- Machine: x"));
  assert.ok(both.includes("\n### Throughput by chunk size\n"));
  assert.ok(both.includes("\n### Where winpipe is behind\n\n- a cell\n"));
  assert.ok(both.indexOf("## Windows named pipes") < both.indexOf(unix));
  // Again, the Unix part anew: the Windows part as it was; the Windows part anew: the Unix kept.
  const unix2 = unix.replace("figures", "new figures");
  const again = assemble({ unix: unix2 }, both);
  assert.equal(again, both.replace(unix, unix2));
  const windows = "## Windows named pipes, run on 2026-12-08\n\n### Throughput\n\nw";
  const third = assemble({ windows }, again);
  assert.ok(third.includes(windows) && third.includes(unix2));
  assert.ok(!third.includes("2026-12-06"));
  // The HTTP part comes last, and is kept when the others run anew (and the reverse).
  const http = "## HTTP on Unix sockets (Linux, natively), run on 2026-12-09\n\n| a |";
  const fourth = assemble({ http }, third);
  assert.ok(fourth.indexOf(unix2) < fourth.indexOf(http), "the HTTP part is last");
  assert.equal(assemble({ unix }, fourth), fourth.replace(unix2, unix));
  assert.ok(assemble({ unix }, fourth).includes(http));
  assert.ok(assemble({ http: http.replace("| a |", "| b |") }, fourth).includes(unix2));
});

test("the HTTP section: medians, ratios to the best other server, and winpipe below 0.9× named", () => {
  const impls = [
    { name: "winpipe (Deno)", runtime: "Deno", kind: "winpipe" },
    { name: "Deno.serve", runtime: "Deno", kind: "own" },
    { name: "winpipe (Bun)", runtime: "Bun", kind: "winpipe" },
    { name: "node http", runtime: "Node", kind: "node" },
  ];
  const rps: Record<string, number[]> = {
    "winpipe (Deno)": [4000, 5000, 6000],
    "Deno.serve": [9000, 10000, 30000],
    "winpipe (Bun)": [9500, 9200, 9900],
    "node http": [8000, 8000, 8000],
  };
  const results = Object.entries(rps).flatMap(([impl, values]) =>
    values.map((value, round) => ({ impl, round, value, reconnects: 0 }))
  );
  results.push({
    impl: "node http",
    round: 3,
    value: undefined as unknown as number,
    reconnects: 0,
  });
  (results[results.length - 1] as { error?: string }).error = "exit 1: boom";
  const r = renderHttp({
    date: "2026-12-09",
    platform: "linux",
    machine: { cpus: 2, model: "x", os: "linux 6" },
    versions: { deno: "deno 2.9", bun: "1.4", node: "v24", cc: "gcc" },
    rounds: 3,
    conns: 4,
    seconds: 3,
    impls,
    results,
    wine: {
      rounds: 1,
      conns: 4,
      seconds: 3,
      impls: [
        { name: "winpipe (Deno)", kind: "winpipe" },
        { name: "winpipe (Bun)", kind: "winpipe" },
        { name: "node http", kind: "node" },
      ],
      results: [
        { impl: "winpipe (Deno)", round: 0, value: 950 },
        { impl: "winpipe (Bun)", round: 0, value: 700 },
        { impl: "node http", round: 0, value: 1000 },
      ],
    },
  });
  assert.ok(
    r.markdown.startsWith("## HTTP on Unix sockets (Linux, natively), run on 2026-12-09\n"),
  );
  // The best other server by median is Deno.serve (10 000), not its best round (30 000).
  assert.match(r.markdown, /\| winpipe \(Deno\) \| 5,000 \| 0\.50× \| 4,000 – 6,000 \|/);
  assert.match(r.markdown, /\| winpipe \(Bun\) \| 9,500 \| 0\.95× \|/);
  assert.match(r.markdown, /- node http: exit 1: boom/);
  // On pipes under Wine the goal is 0.9× Node's http: Deno's 0.95× meets it, Bun's 0.70× not.
  assert.match(r.markdown, /\| winpipe \(Bun\) \| 700 \| 0\.70× \|/);
  assert.deepEqual(r.behind.map((b) => b.name), ["winpipe (Deno)", "winpipe (Bun) on a pipe"]);
  assert.match(r.guard, /winpipe \(Deno\): 0\.50× Deno\.serve/);
  assert.match(r.guard, /named pipes under Wine: winpipe \(Bun\) on a pipe 0\.70× node http$/);
});
