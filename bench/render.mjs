#!/usr/bin/env node
// bench/RESULTS.md from the benches' output, and the guard that ends `npm run bench`. RESULTS.md
// has two parts, each a section with its own date: Windows named pipes (render(): the cells where
// a winpipe column is below the best peer, and the chosen constants, MAX_BLOCK and the default
// highWaterMark, against their neighbours in `deno bench`) and Unix sockets natively
// (bench/render_unix.mjs: the cells below the goals). assemble() puts the parts together, keeping
// from the existing file the part that did not run. bench/compare.mjs calls these after a run. On
// its own, this file renders the saved output again, to check the rendering:
//
//   node bench/render.mjs [OUT]     from .tmp/bench/results.json, ipc.json, deno-bench.txt and
//                                   bun-bench.txt (the Windows part) and unix.json (the Unix
//                                   part), those that exist, into OUT (default
//                                   .tmp/bench/RESULTS.md), the other part kept from
//                                   bench/RESULTS.md; prints the guards
//
// Where deno-bench.txt or bun-bench.txt is missing (compare.mjs saves them), their text is taken
// from bench/RESULTS.md. It never writes bench/RESULTS.md: only `npm run bench` does.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { renderHttp } from "./render_http.mjs";
import { renderUnix } from "./render_unix.mjs";

export { renderHttp } from "./render_http.mjs";
export { renderUnix, unixGoals } from "./render_unix.mjs";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..");
const cWriter = "C, 2 writes in flight";
/** A candidate this much faster than the chosen value (time ratio) says the machine disagrees. */
const NEIGHBOUR_MARGIN = 1.1;
/** winpipe's round trips are flagged below this share of its runtime's hop alone. */
const HOP_SHARE = 0.9;
const margin = `${Math.round((NEIGHBOUR_MARGIN - 1) * 100)}%`;

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const size = (n) => (n >= 1 << 20 ? `${n >> 20} MiB` : n >= 1024 ? `${n >> 10} KiB` : `${n} B`);
const isWinpipe = (name) => name.startsWith("winpipe");
const isHop = (name) => name.startsWith("hop alone");
/** "hop alone (Deno)" for "winpipe (Deno)". */
const hopOf = (name) => name.replace(/^winpipe/, "hop alone");

/** "32 MiB at 256 B, 64 MiB at 4 KiB, …": each run's size (larger at larger chunks). */
function perChunk(r) {
  const by = r.totalMiBByChunk;
  if (!by) return `${r.totalMiB} MiB`;
  return Object.entries(by).map(([c, mib]) => `${mib} MiB at ${size(Number(c))}`).join(", ");
}

/** Median, spread and failures of write runs (each with `mbps`, or an `error`). */
function summary(runs) {
  const ok = runs.filter((r) => r.mbps !== undefined).map((r) => r.mbps);
  return {
    median: ok.length ? median(ok) : undefined,
    min: Math.min(...ok),
    max: Math.max(...ok),
    failed: runs.length - ok.length,
    errors: [...new Set(runs.filter((r) => r.error).map((r) => r.error))],
    runs: runs.length,
  };
}

/**
 * RESULTS.md and the guard, from bench/compare_windows.ts's results.json (`results`),
 * bench/ipc_windows.ts's ipc.json (`ipc`), and the text of `deno bench` and
 * bench/completion_path_bun.ts. Returns the markdown (the guard's section at its end), the guard's
 * lines (`behind`: winpipe below the best peer; `reference`: below the C reference, for
 * information; `constants`: the chosen constants against their neighbours, `flagged` where this
 * machine disagrees) and `guard`, the text to print.
 */
export function render(results, ipc, denoBench, bunBench) {
  const onWindows = process.platform === "win32";
  const cell = {};
  for (const chunk of results.chunkSizes) {
    for (const writer of results.writers) {
      cell[`${chunk}/${writer}`] = summary(
        results.runs.filter((r) => r.chunk === chunk && r.writer === writer),
      );
    }
  }

  const date = new Date().toISOString().slice(0, 10);
  const host = onWindows ? "Windows (native)" : "Linux under Wine 10 (Debian trixie root)";
  const lines = [];
  lines.push(`${WINDOWS_HEADING}, run on ${date}`, "");
  lines.push(`- Machine: ${cpus().length} × ${cpus()[0]?.model ?? "?"}, ${host}`);
  lines.push(
    `- Runtimes (Windows builds): ${results.versions.deno}; Bun ${results.versions.bun}; Node ${results.versions.node}`,
  );
  const cSink = results.sink === "C";
  lines.push(
    `- Method: each writer, in its own process, writes ${perChunk(results)} in fixed-size chunks`,
    `  (honouring backpressure) into one reader process, the sink, which times each connection from`,
    `  its start to the last byte. ${results.rounds} rounds, the writers' order rotated every round.`,
    cSink
      ? "  The sink is a C program (`bench/peers/reader.c`: blocking 1 MiB reads, a 1 MiB pipe buffer),"
        + "\n  so that the reader is not what limits a writer."
      : results.sinkChosen
      ? "  The sink is Node's `net` (`bench/peers/reader.cjs`, 64 KiB reads), as `WINPIPE_BENCH_SINK=node`"
        + "\n  asked: a reader that takes the pipe in small pieces, as most programs' readers do."
      : "  The sink is Node's `net` (`bench/peers/reader.cjs`): the C sink could not be built.",
    `  Figures are medians in MB/s (10^6 bytes/s); the ratio is to node's \`net\` at the same chunk size.`,
    `  The machine is small (2 cores) and noisy: read ratios, not digits.`,
  );
  if (results.writers.includes(cWriter)) {
    lines.push(
      `- "${cWriter}" is the reference: \`bench/peers/writer.c\`, plain Win32 C keeping two`,
      "  overlapped `WriteFile`s of one chunk each in flight. One call per chunk, nothing gathered: at",
      "  small chunks it shows what a call costs, where winpipe and the `net`s gather small writes into",
      `  large ones. The C peers are compiled with ${results.c?.compiler ?? "?"} (-O2).`,
    );
  }
  if (results.c?.missing) {
    lines.push(`- **The C reference rows are missing**: ${results.c.missing}.`);
  }
  lines.push("");
  lines.push("### Throughput by chunk size (median MB/s, ratio to node)", "");
  lines.push(`| chunk | ${results.writers.join(" | ")} |`);
  lines.push(`| ---: | ${results.writers.map(() => "---:").join(" | ")} |`);
  for (const chunk of results.chunkSizes) {
    const node = cell[`${chunk}/node net`]?.median;
    const row = results.writers.map((w) => {
      const c = cell[`${chunk}/${w}`];
      if (c.median === undefined) return `failed (${c.failed}/${c.runs})`;
      const ratio = node ? ` (${(c.median / node).toFixed(2)}×)` : "";
      return `${c.median.toFixed(1)}${ratio}${c.failed ? ` [${c.failed} failed]` : ""}`;
    });
    lines.push(`| ${size(chunk)} | ${row.join(" | ")} |`);
  }
  lines.push("", "### Spread (min – max MB/s over the rounds)", "");
  lines.push(`| chunk | ${results.writers.join(" | ")} |`);
  lines.push(`| ---: | ${results.writers.map(() => "---:").join(" | ")} |`);
  for (const chunk of results.chunkSizes) {
    const row = results.writers.map((w) => {
      const c = cell[`${chunk}/${w}`];
      return c.median === undefined ? "–" : `${c.min.toFixed(0)} – ${c.max.toFixed(0)}`;
    });
    lines.push(`| ${size(chunk)} | ${row.join(" | ")} |`);
  }
  // The slow reader's pass (compare_windows.ts): 1 MiB chunks into Node's net, 64 KiB reads.
  const slow = results.slowSink;
  const slowWriters = slow ? [...new Set(slow.runs.map((r) => r.writer))] : [];
  const slowCell = (w) => {
    const c = summary(slow.runs.filter((r) => r.writer === w));
    return { ...c, n: c.runs };
  };
  if (slow) {
    const node = slowCell("node net").median;
    lines.push(
      "",
      `### ${
        size(slow.chunk)
      } writes into a reader that takes 64 KiB at a time (median MB/s, ratio to node)`,
      "",
      "The same writers, but Node's `net` as the sink (`bench/peers/reader.cjs`): a reader that",
      "drains the pipe in small pieces, as most programs' readers do, waits whenever the pipe runs",
      "dry between two writes, which the C sink's 1 MiB reads hide. Spread in brackets.",
      "",
      `| | ${slowWriters.join(" | ")} |`,
      `| --- | ${slowWriters.map(() => "---:").join(" | ")} |`,
      `| ${size(slow.chunk)} | ${
        slowWriters.map((w) => {
          const c = slowCell(w);
          if (c.median === undefined) return `failed (${c.failed}/${c.n})`;
          const ratio = node ? ` (${(c.median / node).toFixed(2)}×)` : "";
          return `${c.median.toFixed(1)}${ratio} [${c.min.toFixed(0)} – ${c.max.toFixed(0)}]`;
        }).join(" | ")
      } |`,
    );
  }
  const errors = Object.entries(cell).filter(([, c]) => c.errors.length);
  if (errors.length) {
    lines.push("", "### Failed runs", "");
    for (const [k, c] of errors) lines.push(`- ${k.replace("/", " B, ")}: ${c.errors.join("; ")}`);
  }
  const ipcCell = (rows, impl, key, pick) => {
    const ok = rows.filter((r) => r.impl === impl && pick(r)).map((r) => r[key]).filter((v) =>
      v !== undefined
    );
    const all = rows.filter((r) => r.impl === impl && pick(r));
    return {
      median: ok.length ? median(ok) : undefined,
      failed: all.length - ok.length,
      n: all.length,
      min: Math.min(...ok),
      max: Math.max(...ok),
    };
  };
  // ipc.json before the hop rows had no `readers`: every implementation read.
  const readers = ipc.readers ?? ipc.impls;
  const hops = ipc.impls.filter(isHop);
  const rtCell = (impl) => ipcCell(ipc.rt, impl, "value", () => true);
  lines.push("", "### IPC: round trips (64 B request and response, one at a time)", "");
  lines.push(
    `Each implementation at both ends, each end in its own process; ${ipc.roundTrips} exchanges a run,`,
    `${ipc.rtRuns ?? ipc.rounds} runs of each (the order rotated). Median round trips per second,`,
    "the ratio to node, and the spread.",
    ...(ipc.impls.includes("C")
      ? [
        "C is the reference: `bench/peers/rt_server.c` and `rt_client.c`, blocking reads and writes.",
      ]
      : []),
    ...(hops.length
      ? [
        `"${hops.join(`" and "`)}" are \`bench/peers/hop.ts\` at both ends: the same ping-pong`,
        "through the same FFI callback path as winpipe (`CreateThreadpoolIo`, completions skipped on",
        "synchronous success, the runtime's thread-safe callback into JS) and nothing else, no",
        "streams, queue or timers. They are the ceiling that the runtime's FFI callback path sets on",
        "round trips on this machine; the last row is winpipe's share of its runtime's ceiling.",
      ]
      : []),
    "",
  );
  lines.push(
    "| | " + ipc.impls.join(" | ") + " |",
    "| --- | " + ipc.impls.map(() => "---:").join(" | ") + " |",
  );
  {
    const nodeRt = rtCell("node net").median;
    lines.push(
      "| round trips/s | " + ipc.impls.map((i) => {
        const c = rtCell(i);
        return c.median === undefined
          ? `failed (${c.failed}/${c.n})`
          : `${c.median.toFixed(0)} (${(c.median / nodeRt).toFixed(2)}×)`;
      }).join(" | ") + " |",
    );
    lines.push(
      "| spread | " + ipc.impls.map((i) => {
        const c = rtCell(i);
        return c.median === undefined ? "–" : `${c.min.toFixed(0)} – ${c.max.toFixed(0)}`;
      }).join(" | ") + " |",
    );
    if (hops.length) {
      lines.push(
        "| ratio to its runtime's hop alone | " + ipc.impls.map((i) => {
          const c = rtCell(i);
          const hop = isWinpipe(i) ? rtCell(hopOf(i)).median : undefined;
          return c.median === undefined || hop === undefined
            ? "–"
            : `${(c.median / hop).toFixed(2)}×`;
        }).join(" | ") + " |",
      );
    }
  }
  lines.push("", "### IPC: read throughput by chunk size (median MB/s, ratio to node)", "");
  lines.push(
    ipc.source === cWriter
      ? `One writer, the C reference writer (two overlapped writes in flight, so that the readers are`
        + `\nwhat is measured), writes ${
          perChunk(ipc)
        } in fixed chunks into each reader in turn; the`
      : `One writer, Node's \`net\` (the C writer could not be built), writes ${
        perChunk(ipc)
      } in fixed`
        + "\nchunks into each reader in turn; the",
    "reader times its connection from start to last byte. MB/s are 10^6 bytes/s.",
    ...(readers.includes("C") ? ["C is the reference reader, the sink above."] : []),
    ...(ipc.source === cWriter
      ? [
        "At small chunks the source's own cost per `WriteFile` can be the limit: where the C reader is",
        "no faster than the others, the row measures the source rather than the readers.",
      ]
      : []),
    "",
  );
  lines.push(
    "| chunk | " + readers.join(" | ") + " |",
    "| ---: | " + readers.map(() => "---:").join(" | ") + " |",
  );
  const readCell = (impl, chunk) => ipcCell(ipc.reads, impl, "mbps", (r) => r.chunk === chunk);
  for (const chunk of ipc.chunkSizes) {
    const nodeRead = readCell("node net", chunk).median;
    lines.push(
      `| ${size(chunk)} | ` + readers.map((i) => {
        const c = readCell(i, chunk);
        return c.median === undefined
          ? `failed (${c.failed}/${c.n})`
          : `${c.median.toFixed(1)} (${(c.median / nodeRead).toFixed(2)}×) [${c.min.toFixed(0)}–${
            c.max.toFixed(0)
          }]`;
      }).join(" | ") + " |",
    );
  }
  const ipcErrors = [...ipc.rt, ...ipc.reads].filter((r) => r.error);
  if (ipcErrors.length) {
    lines.push("", "IPC runs that failed:", "");
    for (const r of ipcErrors) {
      lines.push(`- ${r.impl}${r.chunk ? `, ${size(r.chunk)}` : ", round trips"}: ${r.error}`);
    }
  }
  lines.push("", "### `deno bench -A bench/writer_bench.ts bench/completion_path_bench.ts`", "");
  lines.push(
    "The writer's own cost, a real pipe by chunk size, the measurements behind the largest single",
    "write (`MAX_BLOCK`) and the default `highWaterMark`, and the candidate completion paths on",
    "writes that fit in the pipe's buffer and on writes that wait for the reader: winpipe's",
    "(`CreateThreadpoolIo`, completing at once where it can), the same with every completion",
    "queued, a completion port of our own drained by a `nonblocking` GetQueuedCompletionStatusEx,",
    "and Qt's `CreateThreadpoolWait`.",
    "",
  );
  // deno-lint-ignore no-control-regex
  const denoText = denoBench.replace(/\x1b\[[0-9;]*m/g, "").trim().split("\n");
  lines.push("```", ...denoText.filter((l) => !l.startsWith("Check ")), "```", "");
  lines.push("### `bun bench/completion_path_bun.ts`", "");
  lines.push(
    "The completion path candidates in Bun, on writes that wait for the reader (a 0-byte buffer):",
    "winpipe's (`CreateThreadpoolIo` and one thread-safe `JSCallback`) against a completion port",
    "of our own drained by a `Worker` blocked in GetQueuedCompletionStatusEx. Time for 1000",
    "sequential 4 KiB writes, each awaited: the median and every run, in ms.",
    "",
    "| candidate | median ms | runs |",
    "| --- | ---: | --- |",
  );
  for (const line of bunBench.split("\n").filter((l) => l.startsWith("{"))) {
    const r = JSON.parse(line);
    lines.push(`| ${r.candidate} | ${r.medianMs.toFixed(1)} | ${r.runsMs.join(", ")} |`);
  }

  // The guard. Peers are what a user would pick instead of winpipe: Node's net and the runtimes'
  // node:net. The C reference is no such choice; where winpipe is below it, that is information.
  const behind = [];
  const reference = [];
  /** Compares one winpipe cell with the best of `peers` (and with `c`, the C reference). */
  const compare = (where, name, mine, peers, c, unit, digits) => {
    const figure = (v) => `${v.toFixed(digits)}${unit}`;
    if (mine.median === undefined) {
      behind.push(`${where}, ${name}: failed (${mine.failed}/${mine.n} runs)`);
      return;
    }
    const best = peers.filter((p) => p.median !== undefined)
      .reduce((a, p) => (a && a.median >= p.median ? a : p), undefined);
    if (best && mine.median < best.median) {
      behind.push(
        `${where}, ${name}: ${figure(mine.median)}, ${(mine.median / best.median).toFixed(2)}×`
          + ` best peer ${best.name} (${best.median.toFixed(digits)})`,
      );
    }
    if (c?.median !== undefined && mine.median < c.median) {
      reference.push(
        `${where}, ${name}: ${figure(mine.median)}, ${(mine.median / c.median).toFixed(2)}×`
          + ` the C reference${c.name === "C" ? "" : ` "${c.name}"`} (${c.median.toFixed(digits)})`,
      );
    }
  };
  const isPeer = (name) => !isWinpipe(name) && !isHop(name) && name !== "C" && name !== cWriter;
  for (const chunk of results.chunkSizes) {
    const at = (w) => ({ name: w, ...cell[`${chunk}/${w}`], n: cell[`${chunk}/${w}`].runs });
    const peers = results.writers.filter(isPeer).map(at);
    const c = results.writers.includes(cWriter) ? at(cWriter) : undefined;
    for (const w of results.writers.filter(isWinpipe)) {
      compare(`${size(chunk)} write`, w, at(w), peers, c, " MB/s", 1);
    }
  }
  if (slow) {
    const peers = slowWriters.filter(isPeer).map((w) => ({ name: w, ...slowCell(w) }));
    for (const w of slowWriters.filter(isWinpipe)) {
      compare(
        `${size(slow.chunk)} write into node net`,
        w,
        slowCell(w),
        peers,
        undefined,
        " MB/s",
        1,
      );
    }
  }
  for (const chunk of ipc.chunkSizes) {
    const at = (i) => ({ name: i, ...readCell(i, chunk) });
    const peers = readers.filter(isPeer).map(at);
    const c = readers.includes("C") ? at("C") : undefined;
    for (const i of readers.filter(isWinpipe)) {
      compare(`${size(chunk)} read`, i, at(i), peers, c, " MB/s", 1);
    }
  }
  if (ipc.rt.length) {
    const at = (i) => ({ name: i, ...rtCell(i) });
    const peers = ipc.impls.filter(isPeer).map(at);
    const c = ipc.impls.includes("C") ? at("C") : undefined;
    for (const i of ipc.impls.filter(isWinpipe)) {
      const mine = at(i);
      compare("round trips", i, mine, peers, c, "/s", 0);
      const hop = ipc.impls.includes(hopOf(i)) ? at(hopOf(i)) : undefined;
      if (mine.median !== undefined && hop?.median !== undefined) {
        if (mine.median < HOP_SHARE * hop.median) {
          behind.push(
            `round trips, ${i}: ${mine.median.toFixed(0)}/s, ${
              (mine.median / hop.median).toFixed(2)
            }×`
              + ` ${hop.name} (${hop.median.toFixed(0)}), below ${HOP_SHARE}× of it`,
          );
        }
      }
    }
  }
  const constants = neighbourLines(denoBench);
  const none = "winpipe is at or above the best peer in every cell";
  const md = [];
  md.push("", "### Where winpipe is behind", "");
  md.push(
    "Every cell where a winpipe column is below the best peer in its row: the best of Node's `net`",
    "and the runtimes' `node:net` (what a user would pick instead) for writes, reads and round",
    `trips, and for round trips also ${HOP_SHARE}× its runtime's hop alone. The C reference is not`,
    "a peer: where winpipe is below it, that is listed apart. A chosen constant is flagged when a",
    `candidate of its \`deno bench\` group is more than ${margin} faster.`,
    "",
  );
  md.push(...(behind.length ? behind.map((l) => `- ${l}`) : [`${none}.`]), "");
  if (reference.length) {
    md.push("Below the C reference (information, not a peer):", "");
    md.push(...reference.map((l) => `- ${l}`), "");
  }
  md.push("The chosen constants against their neighbours (`deno bench`):", "");
  md.push(...constants.map((c) => `- ${c.line}`), "");
  const guard = [
    "=== where winpipe is behind (also in bench/RESULTS.md)",
    ...(behind.length ? behind : [none]),
    ...(reference.length
      ? ["--- below the C reference (information, not a peer)", ...reference]
      : []),
    "--- the chosen constants against their neighbours (deno bench)",
    ...constants.map((c) => c.line),
  ].join("\n");
  return {
    markdown: [...lines, ...md].join("\n"),
    behind,
    reference,
    constants,
    guard,
  };
}

const MS = { ns: 1e-6, "µs": 1e-3, "μs": 1e-3, us: 1e-3, ms: 1, s: 1000 };

/**
 * The groups of `deno bench`'s text output: for each, its rows (name, average time in ms) and
 * the first name of its summary (the baseline, when the group has one; else the fastest).
 */
export function benchGroups(text) {
  const groups = new Map();
  let group;
  let summary = false;
  // deno-lint-ignore no-control-regex
  for (const raw of text.replace(/\x1b\[[0-9;]*m/g, "").split("\n")) {
    const line = raw.trimEnd();
    const heading = /^group (.+)$/.exec(line);
    if (heading) {
      group = { rows: [], summaryHead: undefined };
      groups.set(heading[1].trim(), group);
      summary = false;
      continue;
    }
    if (!group) continue;
    if (line === "summary") {
      summary = true;
      continue;
    }
    if (summary) {
      if (line.trim() && group.summaryHead === undefined) group.summaryHead = line.trim();
      if (!line.trim() && group.summaryHead !== undefined) group = undefined;
      continue;
    }
    // | name | 64.6 ms | 15.5 | ( 61.0 ms …  70.2 ms) | …
    const row = /^\|\s*(.+?)\s*\|\s*([\d.]+)\s*(ns|µs|μs|us|ms|s)\s*\|/.exec(line);
    if (row) group.rows.push({ name: row[1], ms: Number(row[2]) * MS[row[3]] });
  }
  return groups;
}

/**
 * One line for each of writer_bench.ts's groups "largest write" (MAX_BLOCK) and "high-water mark"
 * (the default highWaterMark): which candidate was fastest and how the chosen value compares;
 * `flagged` when a candidate is more than NEIGHBOUR_MARGIN faster. The chosen candidate is the one
 * named "(chosen)", else the head of the group's summary (Deno's baseline).
 */
export function neighbourLines(denoBench) {
  const groups = benchGroups(denoBench);
  const label = (name) => /\d+ [KM]iB/.exec(name)?.[0] ?? name;
  const ms = (v) => `${v.toFixed(1)} ms`;
  return ["largest write", "high-water mark"].map((name) => {
    const g = groups.get(name);
    if (!g?.rows.length) return { group: name, flagged: false, line: `${name}: not run` };
    const chosen = g.rows.find((r) => r.name.includes("(chosen)"))
      ?? g.rows.find((r) => r.name === g.summaryHead);
    if (!chosen) {
      return { group: name, flagged: false, line: `${name}: no chosen candidate in the output` };
    }
    const fastest = g.rows.reduce((a, r) => (r.ms < a.ms ? r : a));
    const head = `${name}: chosen ${label(chosen.name)} ${ms(chosen.ms)}`;
    if (fastest === chosen) {
      return { group: name, flagged: false, line: `${head}, the fastest of ${g.rows.length}` };
    }
    const ratio = chosen.ms / fastest.ms;
    const flagged = ratio > NEIGHBOUR_MARGIN;
    return {
      group: name,
      flagged,
      line: `${head}; fastest ${label(fastest.name)} ${ms(fastest.ms)} (${ratio.toFixed(2)}×`
        + ` faster): ${flagged ? "this machine disagrees" : `within ${margin}, the choice stands`}`,
    };
  });
}

/** The text of a section of bench/RESULTS.md, from its heading to the next (of any level). */
function section(markdown, heading) {
  const at = markdown.indexOf(heading);
  if (at < 0) return "";
  const rest = markdown.slice(at + heading.length);
  const end = rest.search(/\n##+ /);
  return end < 0 ? rest : rest.slice(0, end);
}

/** The Windows part's heading in RESULTS.md (the date follows); the Unix part's is render_unix's. */
const WINDOWS_HEADING = "## Windows named pipes";
const UNIX_HEADING = "## Unix sockets";
/** The HTTP part's (render_http's). */
const HTTP_HEADING = "## HTTP on Unix sockets";

/**
 * The two parts of an existing RESULTS.md, each its whole section (heading included), or
 * undefined. A file from before the Unix part (one title, "Generated by … on DATE", the Windows
 * figures under `## ` headings) is read as its Windows part: the same text under the new heading,
 * its headings one level down.
 */
export function splitResults(markdown) {
  const part = (heading) => {
    const at = markdown.indexOf(`\n${heading}`);
    if (at < 0) return undefined;
    const rest = markdown.slice(at + 1);
    const end = rest.slice(heading.length).search(/\n## /);
    return (end < 0 ? rest : rest.slice(0, heading.length + end)).trimEnd();
  };
  const windows = part(WINDOWS_HEADING);
  const unix = part(UNIX_HEADING);
  const http = part(HTTP_HEADING);
  const old = /^# Benchmark results\n\nGenerated by .* on (\d{4}-\d{2}-\d{2})\. .*\n/.exec(
    markdown,
  );
  if (windows || unix || http || !old) return { windows, unix, http };
  const body = markdown.slice(old[0].length).replace(/^## /gm, "### ").trim();
  return { windows: `${WINDOWS_HEADING}, run on ${old[1]}\n\n${body}`, unix, http };
}

/**
 * RESULTS.md: the title, then the Windows part and the Unix part, each the new section given in
 * `parts` or else the one in `previous` (the existing RESULTS.md), kept as it was, with its date.
 */
export function assemble(parts, previous = "") {
  const kept = splitResults(previous);
  const windows = parts.windows ?? kept.windows;
  const unix = parts.unix ?? kept.unix;
  const http = parts.http ?? kept.http;
  return [
    "# Benchmark results",
    "",
    "Generated by `npm run bench` (bench/compare.mjs). Do not edit by hand: run it again. Three",
    "parts, each with the day it ran and ending with the cells where winpipe is behind: Windows named",
    "pipes, Unix sockets natively, and HTTP on Unix sockets. `WINPIPE_BENCH_PART=windows`, `unix` or",
    "`http` (or a list: `unix,http`) runs those parts and keeps the others as they were.",
    "",
    ...[windows, unix, http].filter(Boolean).map((s) => s.trimEnd() + "\n"),
  ].join("\n");
}

/** The saved output of a bench, else what bench/RESULTS.md shows of it. */
function savedBenchText() {
  const dir = join(repo, ".tmp", "bench");
  const saved = (name) => {
    const file = join(dir, name);
    return existsSync(file) ? readFileSync(file, "utf8") : undefined;
  };
  const md = readFileSync(join(repo, "bench", "RESULTS.md"), "utf8");
  const denoBench = saved("deno-bench.txt")
    ?? (/```\n([\s\S]*?)\n```/.exec(section(md, "## `deno bench"))?.[1] ?? "");
  const bunBench = saved("bun-bench.txt")
    ?? section(md, "## `bun bench").split("\n")
      .map((l) => /^\| (.+?) \| ([\d.]+) \| ([\d., ]+) \|$/.exec(l))
      .filter(Boolean)
      .map(([, candidate, m, runs]) =>
        JSON.stringify({
          candidate,
          medianMs: Number(m),
          runsMs: runs.split(",").map(Number),
        })
      )
      .join("\n");
  return { denoBench, bunBench };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const out = resolve(process.argv[2] ?? join(repo, ".tmp", "bench", "RESULTS.md"));
  if (out === join(repo, "bench", "RESULTS.md")) {
    console.error("bench/RESULTS.md is written by npm run bench only: give another file");
    process.exit(2);
  }
  const saved = (name) => {
    const file = join(repo, ".tmp", "bench", name);
    return existsSync(file) ? JSON.parse(readFileSync(file, "utf8")) : undefined;
  };
  const parts = {};
  const guards = [];
  const [results, ipc, unix] = [saved("results.json"), saved("ipc.json"), saved("unix.json")];
  const http = saved("http.json");
  if (results && ipc) {
    const { denoBench, bunBench } = savedBenchText();
    const r = render(results, ipc, denoBench, bunBench);
    parts.windows = r.markdown;
    guards.push(r.guard);
  }
  if (unix) {
    const r = renderUnix(unix);
    parts.unix = r.markdown;
    guards.push(r.guard);
  }
  if (http) {
    const r = renderHttp(http);
    parts.http = r.markdown;
    guards.push(r.guard);
  }
  writeFileSync(out, assemble(parts, readFileSync(join(repo, "bench", "RESULTS.md"), "utf8")));
  console.log(`wrote ${out}`);
  console.log(guards.join("\n"));
}
