/**
 * A pipe's configuration and state, read back from its handle:
 * `NtQueryInformationFile(FilePipeLocalInformation)`. The server checks with it that its first
 * instance is the name's only one; the tests read flags back with it.
 *
 * @module
 */
import { requireNative } from "./native.ts";

/** FILE_PIPE_LOCAL_INFORMATION, as numbers. */
export interface PipeLocalInformation {
  /** Bit 0: message type; bit 1: remote clients rejected. */
  namedPipeType: number;
  namedPipeConfiguration: number;
  maximumInstances: number;
  /** Instances of this pipe name, in every process. */
  currentInstances: number;
  inboundQuota: number;
  readDataAvailable: number;
  outboundQuota: number;
  writeQuotaAvailable: number;
  namedPipeState: number;
  namedPipeEnd: number;
}

const FilePipeLocalInformation = 24;
const FIELDS = [
  "namedPipeType",
  "namedPipeConfiguration",
  "maximumInstances",
  "currentInstances",
  "inboundQuota",
  "readDataAvailable",
  "outboundQuota",
  "writeQuotaAvailable",
  "namedPipeState",
  "namedPipeEnd",
] as const;

/** The pipe's FILE_PIPE_LOCAL_INFORMATION, or undefined when it cannot be read (an NTSTATUS). */
export function pipeLocalInformation(handle: bigint): PipeLocalInformation | undefined {
  const iosb = new Uint8Array(new ArrayBuffer(16)); // IO_STATUS_BLOCK
  const info = new Uint8Array(new ArrayBuffer(FIELDS.length * 4)); // ten ULONGs
  const status = requireNative().ntdll().NtQueryInformationFile(
    handle,
    iosb,
    info,
    info.byteLength,
    FilePipeLocalInformation,
  );
  if (status !== 0) return undefined;
  const view = new DataView(info.buffer);
  const out = {} as Record<(typeof FIELDS)[number], number>;
  FIELDS.forEach((field, i) => (out[field] = view.getUint32(i * 4, true)));
  return out;
}
