const codes: Record<string, number> = {};
for (let i = 0; i < 300; i++) {
  await Bun.connect({ unix: "/tmp/reviewA/sock/closer", socket: { data() {}, close() {} } }).then(
    (s) => {
      codes.ok = (codes.ok ?? 0) + 1;
      s.end();
    },
    (e) => {
      codes[e.code] = (codes[e.code] ?? 0) + 1;
    },
  );
}
console.log(codes);
