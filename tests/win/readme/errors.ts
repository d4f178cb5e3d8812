// README "Usage": errors (on stderr). Nothing listens on \\.\pipe\nobody.
import { PipeError, PipeWriter } from "../../../mod.ts";

try {
  await PipeWriter.open(String.raw`\\.\pipe\nobody`);
} catch (e) {
  if (e instanceof PipeError) console.error(e.code, e.errno, e.syscall, e.message);
  // ERROR_FILE_NOT_FOUND 2 CreateFileW CreateFileW failed on \\.\pipe\nobody:
  //   ERROR_FILE_NOT_FOUND (2): The system cannot find the file specified.
}
