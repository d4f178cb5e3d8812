// Bun's types, for `tsc` only (npm run check). They are referenced here, not in tsconfig.json's
// "types", because Deno reads tsconfig.json's compilerOptions too, and `deno doc --lint` then
// warns about bun-types' `bun:` imports.
/// <reference types="bun-types" />
