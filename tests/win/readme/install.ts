// README "Install": the import line (the specifier is "@winpipe/winpipe" in Deno, "winpipe" in Bun).
import { connect, listen, PipeWriter } from "../../../mod.ts";

console.log([connect, listen, PipeWriter].map((f) => typeof f).join(" "));
