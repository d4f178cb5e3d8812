// The Unix-socket part of bench/RESULTS.md, from bench/compare_unix.mjs's .tmp/bench/unix.json,
// and its guard: the cells where winpipe is below the goals of issue 16, section 5. In each
// runtime, winpipe against the best peer, the peers being what a user of that runtime would pick
// instead (its own socket, its node:net, and Node's net; the C reference is apart):
// - writes and reads: at least the best peer at every size, and writes at 256 B and 4 KiB at least
//   3× it (the writer gathers small writes; a reader cannot, the source writes one call a chunk);
// - round trips: at least 0.95× the best of the runtime's own ways (its own socket, its node:net).
// bench/render.mjs puts the section into RESULTS.md.

/** The goal for writes at small chunks, as a multiple of the best peer. */
export const SMALL_WRITE_GOAL = 3;
/** Writes at this size or smaller must reach {@link SMALL_WRITE_GOAL}. */
export const SMALL_WRITE_MAX = 4096;
/** The goal for round trips, as a share of the best of the runtime's own ways. */
export const ROUND_TRIP_GOAL = 0.95;

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const size = (n) => (n >= 1 << 20 ? `${n >> 20} MiB` : n >= 1024 ? `${n >> 10} KiB` : `${n} B`);
const perChunk = (by) =>
  Object.entries(by).map(([c, mib]) => `${mib} MiB at ${size(Number(c))}`).join(", ");

/** Median, spread and failures of the runs in `rows` that `pick` selects, for `impl`. */
function cellOf(rows, impl, key, pick = () => true) {
  const all = rows.filter((r) => r.impl === impl && pick(r));
  const ok = all.map((r) => r[key]).filter((v) => v !== undefined);
  return {
    name: impl,
    median: ok.length ? median(ok) : undefined,
    min: Math.min(...ok),
    max: Math.max(...ok),
    failed: all.length - ok.length,
    n: all.length,
  };
}

/** The peers of winpipe in `runtime`: `own` ways only (round trips), or with Node's net too. */
function peersOf(impls, runtime, ownOnly) {
  return impls.filter((i) =>
    (i.runtime === runtime && (i.kind === "own" || i.kind === "node:net"))
    || (!ownOnly && i.kind === "node")
  );
}
const best = (cells) =>
  cells.filter((c) => c.median !== undefined)
    .reduce((a, c) => (a && a.median >= c.median ? a : c), undefined);

/**
 * The guard's lines: `behind`, each winpipe cell below its goal (or failed), and `reference`,
 * each below the C reference (information: C is no peer).
 */
export function unixGoals(unix) {
  const behind = [];
  const reference = [];
  const winpipes = unix.impls.filter((i) => i.kind === "winpipe");
  const c = unix.impls.find((i) => i.kind === "C");
  const check = (where, mine, peers, goal, unit, digits, cRef) => {
    const figure = (v) => `${v.toFixed(digits)}${unit}`;
    if (mine.median === undefined) {
      behind.push(`${where}, ${mine.name}: failed (${mine.failed}/${mine.n} runs)`);
      return;
    }
    const top = best(peers);
    if (top && mine.median < goal * top.median) {
      behind.push(
        `${where}, ${mine.name}: ${figure(mine.median)}, ${(mine.median / top.median).toFixed(2)}×`
          + ` the best peer ${top.name} (${top.median.toFixed(digits)}); the goal is ${goal}×`,
      );
    }
    if (cRef?.median !== undefined && mine.median < cRef.median) {
      reference.push(
        `${where}, ${mine.name}: ${figure(mine.median)}, ${(mine.median / cRef.median).toFixed(2)}×`
          + ` the C reference (${cRef.median.toFixed(digits)})`,
      );
    }
  };
  for (const [what, rows] of [["write", unix.writes], ["read", unix.reads]]) {
    for (const chunk of unix.chunkSizes) {
      const at = (i) => cellOf(rows, i.name, "mbps", (r) => r.chunk === chunk);
      for (const w of winpipes) {
        const goal = what === "write" && chunk <= SMALL_WRITE_MAX ? SMALL_WRITE_GOAL : 1;
        const peers = peersOf(unix.impls, w.runtime, false).map(at);
        check(`${size(chunk)} ${what}`, at(w), peers, goal, " MB/s", 1, c && at(c));
      }
    }
  }
  if (unix.rt.length) {
    const at = (i) => cellOf(unix.rt, i.name, "value");
    for (const w of winpipes) {
      const peers = peersOf(unix.impls, w.runtime, true).map(at);
      check("round trips", at(w), peers, ROUND_TRIP_GOAL, "/s", 0, c && at(c));
    }
  }
  return { behind, reference };
}

/**
 * The section of RESULTS.md (its `## ` heading first, `### ` below) and the guard: `behind`,
 * `reference` (see {@link unixGoals}) and `guard`, the text `npm run bench` prints.
 */
export function renderUnix(unix) {
  const names = unix.impls.map((i) => i.name);
  const os = unix.platform === "darwin"
    ? "macOS"
    : unix.platform === "linux"
    ? "Linux"
    : unix.platform;
  const lines = [];
  const table = (head) =>
    lines.push(
      `| ${head} | ${names.join(" | ")} |`,
      `| ---: | ${names.map(() => "---:").join(" | ")} |`,
    );
  lines.push(`## Unix sockets (${os}, natively), run on ${unix.date}`, "");
  lines.push(
    `- Machine: ${unix.machine.cpus} × ${unix.machine.model}, ${unix.machine.os}, no Wine`,
    `- Runtimes: ${unix.versions.deno}; Bun ${unix.versions.bun}; Node ${unix.versions.node}; C peers`
      + ` compiled with ${unix.versions.cc} (-O2)`,
    `- Method (\`bench/compare_unix.mjs\`): each writer, in its own process, writes`,
    `  ${perChunk(unix.mibByChunk)} in fixed-size chunks (honouring backpressure) into one C`,
    "  sink (`bench/peers/unix_stream.c`: blocking 1 MiB reads), which times each connection from",
    "  its start to the last byte. Reads: the C writer (one blocking `write` a chunk) writes the",
    "  same into each reader in turn, and the reader times. Round trips: 64 B request and",
    `  response, one at a time, ${unix.roundTrips} a run, the same implementation at both ends.`,
    `  ${unix.rounds} rounds, the order rotated every round; medians in MB/s (10^6 bytes/s).`,
    "- Columns: winpipe is `connect`/`listen` and `PipeWriter.open` with a socket path;",
    '  "Deno.connect" and "Bun.connect" are the runtime\'s own socket used directly',
    "  (`bench/peers/unix_own.ts`: each write awaited, a short one's rest after `drain`; Deno reads",
    "  into 64 KiB); then `node:net` in each runtime, Node's own `net`, and C (`unix_stream.c`,",
    "  `unix_rt.c`: plain blocking POSIX calls, one a chunk, nothing gathered).",
    "- Goals (issue 16): in each runtime winpipe reaches the best peer at every size, the peers",
    "  being that runtime's own socket and `node:net`, and Node's `net` (C is apart); writes at",
    `  256 B and 4 KiB reach ${SMALL_WRITE_GOAL}× it (winpipe gathers small writes; no reader can:`,
    "  the source makes one call a chunk); round trips reach",
    `  ${ROUND_TRIP_GOAL}× the best of the runtime's own ways (its own socket, its \`node:net\`).`,
    "  The machine is small and noisy: read ratios, not digits.",
    "",
  );
  const cells = (rows, chunk) =>
    names.map((n) => cellOf(rows, n, "mbps", (r) => r.chunk === chunk));
  const figure = (c, ref) =>
    c.median === undefined
      ? `failed (${c.failed}/${c.n})`
      : `${c.median.toFixed(1)}${ref ? ` (${(c.median / ref).toFixed(2)}×)` : ""}${
        c.failed ? ` [${c.failed} failed]` : ""
      }`;
  const spread = (
    c,
  ) => (c.median === undefined ? "–" : `${c.min.toFixed(0)} – ${c.max.toFixed(0)}`);
  const nodeOf = (cs) => cs.find((c) => c.name === "node net")?.median;
  lines.push("### Writes by chunk size (median MB/s, ratio to node net)", "");
  table("chunk");
  for (const chunk of unix.chunkSizes) {
    const cs = cells(unix.writes, chunk);
    lines.push(`| ${size(chunk)} | ${cs.map((c) => figure(c, nodeOf(cs))).join(" | ")} |`);
  }
  lines.push("", "### Writes: spread (min – max MB/s over the rounds)", "");
  table("chunk");
  for (const chunk of unix.chunkSizes) {
    lines.push(`| ${size(chunk)} | ${cells(unix.writes, chunk).map(spread).join(" | ")} |`);
  }
  lines.push("", "### Reads by chunk size (median MB/s, ratio to node net, [min – max])", "");
  table("chunk");
  for (const chunk of unix.chunkSizes) {
    const cs = cells(unix.reads, chunk);
    lines.push(
      `| ${size(chunk)} | ${
        cs.map((c) => `${figure(c, nodeOf(cs))} [${spread(c)}]`).join(" | ")
      } |`,
    );
  }
  if (unix.rt.length) {
    lines.push("", "### Round trips (64 B, median per second)", "");
    table("");
    const cs = names.map((n) => cellOf(unix.rt, n, "value"));
    const rtFigure = (c) =>
      c.median === undefined ? `failed (${c.failed}/${c.n})` : c.median.toFixed(0);
    lines.push(`| round trips/s | ${cs.map(rtFigure).join(" | ")} |`);
    lines.push(`| spread | ${cs.map(spread).join(" | ")} |`);
    lines.push(
      `| ratio to its runtime's best own way | ${
        unix.impls.map((i, k) => {
          const top = best(
            peersOf(unix.impls, i.runtime, true).map((p) => cellOf(unix.rt, p.name, "value")),
          );
          return i.kind === "winpipe" && top && cs[k].median !== undefined
            ? `${(cs[k].median / top.median).toFixed(2)}× ${top.name}`
            : "–";
        }).join(" | ")
      } |`,
    );
  }
  const failures = [
    ...unix.writes.map((r) => ({ ...r, what: "write" })),
    ...unix.reads.map((r) => ({ ...r, what: "read" })),
    ...unix.rt.map((r) => ({ ...r, what: "round trips" })),
  ]
    .filter((r) => r.error);
  if (failures.length) {
    lines.push("", "### Failed runs", "");
    for (const r of failures) {
      lines.push(
        `- ${r.impl}, ${r.chunk ? `${size(r.chunk)} ` : ""}${r.what}, round ${
          r.round + 1
        }: ${r.error}`,
      );
    }
  }
  const { behind, reference } = unixGoals(unix);
  const none = "winpipe meets every goal in every cell";
  lines.push("", `### Where winpipe is behind the goals (${os})`, "");
  lines.push(...(behind.length ? behind.map((l) => `- ${l}`) : [`${none}.`]), "");
  if (reference.length) {
    lines.push(
      "Below the C reference (information, not a peer):",
      "",
      ...reference.map((l) => `- ${l}`),
      "",
    );
  }
  const guard = [
    `=== where winpipe is behind the goals on Unix sockets (${os}; also in bench/RESULTS.md)`,
    ...(behind.length ? behind : [none]),
    ...(reference.length
      ? ["--- below the C reference (information, not a peer)", ...reference]
      : []),
  ].join("\n");
  return { markdown: lines.join("\n"), behind, reference, guard };
}
