/**
 * One overlapped operation slot: an OVERLAPPED in memory that never moves, and its event.
 *
 * @module
 */
import type { IoResult } from "../../core/channel.ts";
import {
  type Native,
  OVERLAPPED_HEVENT,
  OVERLAPPED_INTERNAL_HIGH,
  OVERLAPPED_SIZE,
} from "../../ffi/kernel32.ts";

/** OVERLAPPED.Internal holds STATUS_PENDING while the I/O is in flight. */
const STATUS_PENDING = 0x103n;

/** One overlapped operation slot: an OVERLAPPED and its event, reused after completion. */
export class Operation {
  /** OVERLAPPED in memory that never moves (a `new ArrayBuffer`), and its address. */
  readonly overlapped: Uint8Array = new Uint8Array(new ArrayBuffer(OVERLAPPED_SIZE));
  readonly address: bigint;
  readonly event: bigint;
  readonly #view: DataView = new DataView(this.overlapped.buffer);
  /** The data the kernel reads or writes; referenced until completion. */
  data: Uint8Array | null = null;
  onComplete: ((r: IoResult) => void) | null = null;
  /** Its result was already taken synchronously (GetOverlappedResultEx); ignore the callback. */
  consumed = false;

  constructor(nat: Native, event: bigint) {
    this.address = nat.addressOf(this.overlapped);
    this.event = event;
  }

  reset(): void {
    // Internal, InternalHigh, Offset, OffsetHigh = 0; hEvent kept (each call resets the event).
    this.overlapped.fill(0, 0, OVERLAPPED_HEVENT);
    this.#view.setBigUint64(OVERLAPPED_HEVENT, this.event, true);
    this.consumed = false;
  }

  /** True while the kernel has not completed it (OVERLAPPED.Internal is STATUS_PENDING). */
  get inFlight(): boolean {
    return this.#view.getBigUint64(0, true) === STATUS_PENDING;
  }

  /** Bytes transferred (OVERLAPPED.InternalHigh), once the operation has completed. */
  get bytesTransferred(): number {
    return this.#view.getUint32(OVERLAPPED_INTERNAL_HIGH, true);
  }
}
