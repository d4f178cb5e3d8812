import { connect } from "/tmp/reviewA/repo/mod.ts";
for (let i = 0; i < 300; i++) {
  try {
    const c = await connect("/tmp/reviewA/sock/closer");
    await c.close();
  } catch (e: any) {
    console.log(i, e.message);
    console.log("cause:", e.cause?.message, e.cause?.code, e.cause?.syscall);
    console.log(e.cause?.stack?.split("\n").slice(0, 6).join("\n"));
    break;
  }
}
const codes: Record<string, number> = {};
for (let i = 0; i < 300; i++) {
  await Bun.connect({
    unix: "/tmp/reviewA/sock/closer",
    socket: { data() {}, drain() {}, end() {}, close() {}, error() {} },
    data: undefined,
  }).then((s) => {
    codes.ok = (codes.ok ?? 0) + 1;
    s.end();
  }, (e) => {
    codes[e.code] = (codes[e.code] ?? 0) + 1;
  });
}
console.log("raw with same handlers", codes);
