// The HTTP part of bench/RESULTS.md, from bench/compare_http.mjs's .tmp/bench/http.json, and its
// guard: where winpipe's serve() is below the goal, 0.9× the best server on the same endpoint
// (issue 17). bench/render.mjs puts the section into RESULTS.md.

/** winpipe's serve() should reach this share of the best server's requests per second. */
export const HTTP_GOAL = 0.9;

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0
    ? undefined
    : s.length % 2
    ? s[s.length >> 1]
    : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** Per server: the median, min and max of its rounds, its reconnects, and its failures. */
function statsOf({ impls, results }) {
  return impls.map((impl) => {
    const mine = results.filter((r) => r.impl === impl.name);
    const values = mine.filter((r) => r.value !== undefined).map((r) => r.value);
    return {
      ...impl,
      median: median(values),
      min: values.length ? Math.min(...values) : undefined,
      max: values.length ? Math.max(...values) : undefined,
      reconnects: median(mine.filter((r) => r.reconnects !== undefined).map((r) => r.reconnects)),
      errors: mine.filter((r) => r.error).map((r) => r.error),
    };
  });
}

/** Requests per second as the tables show them. */
const fmt = (v) => (v === undefined ? "failed" : Math.round(v).toLocaleString("en-US"));

/** The servers with failed runs, and their errors. */
function failureLines(stats) {
  const failures = stats.filter((s) => s.errors.length);
  return failures.length
    ? ["", "Failed runs:", ...failures.map((s) => `- ${s.name}: ${s.errors.join("; ")}`)]
    : [];
}

/** The winpipe servers below the goal against `ratio` (undefined: failed), named `name(s)`. */
function behindOf(stats, ratio, name = (s) => s.name) {
  return stats.filter((s) => s.kind === "winpipe")
    .filter((s) => ratio(s) === undefined || ratio(s) < HTTP_GOAL)
    .map((s) => ({ name: name(s), ratio: ratio(s) }));
}

/** The list of `behind`, against the server named `ref`. */
function behindLines(behind, ref) {
  if (behind.length === 0) return [`None: every winpipe server reached ${HTTP_GOAL}× ${ref}.`];
  return behind.map((b) =>
    `- ${b.name}: ${b.ratio === undefined ? "failed" : `${b.ratio.toFixed(2)}×`} ${ref}`
    + ` (goal ${HTTP_GOAL}×)`
  );
}

/** The section (its `## ` heading first) and the guard `npm run bench` prints. */
export function renderHttp(http) {
  const os = http.platform === "darwin"
    ? "macOS"
    : http.platform === "linux"
    ? "Linux"
    : http.platform;
  const stats = statsOf(http);
  const peers = stats.filter((s) => s.kind !== "winpipe" && s.median !== undefined);
  const best = peers.reduce((a, b) => (b.median > a.median ? b : a), peers[0]);
  const ratio = (s) => (s.median && best ? s.median / best.median : undefined);
  const lines = [
    `## HTTP on Unix sockets (${os}, natively), run on ${http.date}`,
    "",
    `- Machine: ${http.machine.cpus} × ${http.machine.model}, ${http.machine.os}, no Wine`,
    `- Runtimes: ${http.versions.deno}; Bun ${http.versions.bun}; Node ${http.versions.node}; the C`
    + ` load compiled with ${http.versions.cc} (-O2)`,
    "- Method (`bench/compare_http.mjs`): each server, in its own process, answers every",
    "  `GET /hello` with a 13-byte text body. One C client (`bench/peers/http_load.c`) runs",
    `  ${http.conns} threads for ${http.seconds} s, each one request at a time on a kept-alive`,
    "  connection, reading the whole response before the next; a server that closes after a",
    "  response (`Connection: close`) costs a reconnect, counted in the time.",
    `  ${http.rounds} rounds, the order rotated every round; medians in requests per second.`,
    `- Goal (issue 17): winpipe's \`serve()\` reaches ${HTTP_GOAL}× the best of the others.`,
    "  The machine is small and noisy: read ratios, not digits.",
    "",
    `| server | requests/s (median) | ratio to ${
      best?.name ?? "the best"
    } | min – max | reconnects |`,
    "| --- | ---: | ---: | ---: | ---: |",
    ...stats.map((s) =>
      `| ${s.name} | ${fmt(s.median)} | ${ratio(s) ? ratio(s).toFixed(2) + "×" : "–"} | ${
        fmt(s.min)
      } – ${fmt(s.max)} | ${s.reconnects ?? "–"} |`
    ),
    ...failureLines(stats),
  ];
  const behind = behindOf(stats, ratio);
  lines.push(
    "",
    "### Where winpipe is behind the goal (HTTP)",
    "",
    ...behindLines(behind, best?.name ?? ""),
  );
  let wineBehind = [];
  if (http.wine?.error) {
    lines.push("", "### Named pipes under Wine", "", `Not measured: ${http.wine.error}`);
  } else if (http.wine) {
    const w = wineTable(http.wine);
    lines.push("", ...w.lines);
    wineBehind = w.behind;
  }
  const guard = [
    `=== where winpipe is behind the HTTP goal (${os}; also in bench/RESULTS.md)`,
    ...(behind.length
      ? behind.map((b) => `  ${b.name}: ${b.ratio?.toFixed(2) ?? "failed"}× ${best?.name}`)
      : ["  nowhere"]),
    ...(http.wine && !http.wine.error
      ? [
        "  named pipes under Wine: " + (wineBehind.length
          ? wineBehind.map((b) => `${b.name} ${b.ratio?.toFixed(2) ?? "failed"}× node http`)
            .join(", ")
          : "nowhere"),
      ]
      : []),
  ].join("\n");
  return { markdown: lines.join("\n") + "\n", behind: [...behind, ...wineBehind], guard };
}

/** The Wine table: each server's median, and its ratio to Node's http on a pipe. */
function wineTable(wine) {
  const stats = statsOf(wine);
  const node = stats.find((s) => s.kind === "node");
  const ratio = (s) => (s.median && node?.median ? s.median / node.median : undefined);
  const lines = [
    "### Named pipes under Wine (`bench/http_windows.ts`)",
    "",
    `The same request on named pipes, the Windows builds under Wine: ${wine.conns} connections of`,
    `Node's http client (\`bench/peers/http_load.cjs\`, keep-alive) for ${wine.seconds} s,`,
    `${wine.rounds} rounds. Goal (issue 17): ${HTTP_GOAL}× Node's http on a pipe.`,
    "",
    "| server | requests/s (median) | ratio to node http | min – max |",
    "| --- | ---: | ---: | ---: |",
    ...stats.map((s) =>
      `| ${s.name} | ${fmt(s.median)} | ${ratio(s) ? ratio(s).toFixed(2) + "×" : "–"} | ${
        fmt(s.min)
      } – ${fmt(s.max)} |`
    ),
    ...failureLines(stats),
  ];
  const behind = behindOf(stats, ratio, (s) => `${s.name} on a pipe`);
  lines.push(
    "",
    "Where winpipe is behind the goal on pipes:",
    "",
    ...behindLines(behind, "node http"),
  );
  return { lines, behind };
}
