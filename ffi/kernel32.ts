/**
 * kernel32 as data: one entry per Win32 function, the C parameter names beside each FFI type.
 *
 * The types are a neutral vocabulary that both adapters map: `u8`/`u32`/`i32` are JS numbers,
 * `usize` is a pointer-sized value (HANDLE, PVOID, ULONG_PTR) carried as a `bigint`, and
 * `buffer` is a typed array (or `null`) whose memory the callee reads or writes during the call.
 * Memory that must outlive a call (an OVERLAPPED, the bytes of a pending write) is passed as
 * `usize`, the address of writer-owned memory, so that its lifetime is explicit at the call site.
 *
 * @module
 */

/** The FFI types of the symbol table. */
export type NativeType = "u8" | "u32" | "i32" | "usize" | "buffer" | "void";

/** One Win32 function: its parameters and its result. */
export interface NativeSymbol {
  readonly parameters: readonly NativeType[];
  readonly result: NativeType;
}

/** Every kernel32 function winpipe calls. */
export const kernel32Symbols = {
  // HANDLE CreateFileW(LPCWSTR lpFileName, DWORD dwDesiredAccess, DWORD dwShareMode,
  //   LPSECURITY_ATTRIBUTES lpSecurityAttributes, DWORD dwCreationDisposition,
  //   DWORD dwFlagsAndAttributes, HANDLE hTemplateFile)
  CreateFileW: {
    parameters: ["buffer", "u32", "u32", "buffer", "u32", "u32", "usize"],
    result: "usize",
  },
  // HANDLE CreateNamedPipeW(LPCWSTR lpName, DWORD dwOpenMode, DWORD dwPipeMode,
  //   DWORD nMaxInstances, DWORD nOutBufferSize, DWORD nInBufferSize, DWORD nDefaultTimeOut,
  //   LPSECURITY_ATTRIBUTES lpSecurityAttributes)
  CreateNamedPipeW: {
    parameters: ["buffer", "u32", "u32", "u32", "u32", "u32", "u32", "buffer"],
    result: "usize",
  },
  // BOOL WaitNamedPipeW(LPCWSTR lpNamedPipeName, DWORD nTimeOut)
  // Only ever with NMPWAIT_NOWAIT: it must not block the JS thread.
  WaitNamedPipeW: { parameters: ["buffer", "u32"], result: "i32" },
  // BOOL ConnectNamedPipe(HANDLE hNamedPipe, LPOVERLAPPED lpOverlapped)
  ConnectNamedPipe: { parameters: ["usize", "usize"], result: "i32" },
  // BOOL DisconnectNamedPipe(HANDLE hNamedPipe)
  DisconnectNamedPipe: { parameters: ["usize"], result: "i32" },
  // BOOL GetNamedPipeInfo(HANDLE hNamedPipe, LPDWORD lpFlags, LPDWORD lpOutBufferSize,
  //   LPDWORD lpInBufferSize, LPDWORD lpMaxInstances)
  GetNamedPipeInfo: {
    parameters: ["usize", "buffer", "buffer", "buffer", "buffer"],
    result: "i32",
  },
  // BOOL PeekNamedPipe(HANDLE hNamedPipe, LPVOID lpBuffer, DWORD nBufferSize,
  //   LPDWORD lpBytesRead, LPDWORD lpTotalBytesAvail, LPDWORD lpBytesLeftThisMessage)
  PeekNamedPipe: {
    parameters: ["usize", "buffer", "u32", "buffer", "buffer", "buffer"],
    result: "i32",
  },
  // BOOL SetNamedPipeHandleState(HANDLE hNamedPipe, LPDWORD lpMode,
  //   LPDWORD lpMaxCollectionCount, LPDWORD lpCollectDataTimeout)
  SetNamedPipeHandleState: { parameters: ["usize", "buffer", "buffer", "buffer"], result: "i32" },
  // BOOL GetNamedPipeServerProcessId(HANDLE Pipe, PULONG ServerProcessId)
  GetNamedPipeServerProcessId: { parameters: ["usize", "buffer"], result: "i32" },
  // BOOL GetNamedPipeClientProcessId(HANDLE Pipe, PULONG ClientProcessId)
  GetNamedPipeClientProcessId: { parameters: ["usize", "buffer"], result: "i32" },
  // BOOL WriteFile(HANDLE hFile, LPCVOID lpBuffer, DWORD nNumberOfBytesToWrite,
  //   LPDWORD lpNumberOfBytesWritten, LPOVERLAPPED lpOverlapped)
  WriteFile: { parameters: ["usize", "usize", "u32", "buffer", "usize"], result: "i32" },
  // BOOL ReadFile(HANDLE hFile, LPVOID lpBuffer, DWORD nNumberOfBytesToRead,
  //   LPDWORD lpNumberOfBytesRead, LPOVERLAPPED lpOverlapped)
  ReadFile: { parameters: ["usize", "usize", "u32", "buffer", "usize"], result: "i32" },
  // BOOL CancelIoEx(HANDLE hFile, LPOVERLAPPED lpOverlapped)
  CancelIoEx: { parameters: ["usize", "usize"], result: "i32" },
  // BOOL GetOverlappedResultEx(HANDLE hFile, LPOVERLAPPED lpOverlapped,
  //   LPDWORD lpNumberOfBytesTransferred, DWORD dwMilliseconds, BOOL bAlertable)
  GetOverlappedResultEx: {
    parameters: ["usize", "usize", "buffer", "u32", "i32"],
    result: "i32",
  },
  // BOOL CloseHandle(HANDLE hObject)
  CloseHandle: { parameters: ["usize"], result: "i32" },
  // BOOL GetHandleInformation(HANDLE hObject, LPDWORD lpdwFlags)
  GetHandleInformation: { parameters: ["usize", "buffer"], result: "i32" },
  // DWORD GetFileType(HANDLE hFile)
  GetFileType: { parameters: ["usize"], result: "u32" },
  // DWORD GetLastError(void)
  GetLastError: { parameters: [], result: "u32" },
  // HANDLE CreateEventW(LPSECURITY_ATTRIBUTES lpEventAttributes, BOOL bManualReset,
  //   BOOL bInitialState, LPCWSTR lpName)
  CreateEventW: { parameters: ["buffer", "i32", "i32", "buffer"], result: "usize" },
  // DWORD WaitForSingleObject(HANDLE hHandle, DWORD dwMilliseconds)
  WaitForSingleObject: { parameters: ["usize", "u32"], result: "u32" },
  // PTP_IO CreateThreadpoolIo(HANDLE fl, PTP_WIN32_IO_CALLBACK pfnio, PVOID pv,
  //   PTP_CALLBACK_ENVIRON pcbe)
  CreateThreadpoolIo: { parameters: ["usize", "usize", "usize", "usize"], result: "usize" },
  // VOID StartThreadpoolIo(PTP_IO pio)
  StartThreadpoolIo: { parameters: ["usize"], result: "void" },
  // VOID CancelThreadpoolIo(PTP_IO pio)
  CancelThreadpoolIo: { parameters: ["usize"], result: "void" },
  // VOID WaitForThreadpoolIoCallbacks(PTP_IO pio, BOOL fCancelPendingCallbacks)
  // Never called on the JS thread in Deno: see Native.waitForThreadpoolIoCallbacks.
  WaitForThreadpoolIoCallbacks: { parameters: ["usize", "i32"], result: "void" },
  // VOID CloseThreadpoolIo(PTP_IO pio)
  CloseThreadpoolIo: { parameters: ["usize"], result: "void" },
  // BOOL SetFileCompletionNotificationModes(HANDLE FileHandle, UCHAR Flags)
  SetFileCompletionNotificationModes: { parameters: ["usize", "u8"], result: "i32" },
  // DWORD FormatMessageW(DWORD dwFlags, LPCVOID lpSource, DWORD dwMessageId,
  //   DWORD dwLanguageId, LPWSTR lpBuffer, DWORD nSize, va_list *Arguments)
  FormatMessageW: {
    parameters: ["u32", "usize", "u32", "u32", "buffer", "u32", "usize"],
    result: "u32",
  },
  // int lstrlenW(LPCWSTR lpString)
  lstrlenW: { parameters: ["usize"], result: "i32" },
  // HLOCAL LocalFree(HLOCAL hMem)
  LocalFree: { parameters: ["usize"], result: "usize" },
  // HANDLE GetCurrentProcess(void)
  GetCurrentProcess: { parameters: [], result: "usize" },
  // HANDLE OpenProcess(DWORD dwDesiredAccess, BOOL bInheritHandle, DWORD dwProcessId)
  OpenProcess: { parameters: ["u32", "i32", "u32"], result: "usize" },
  // BOOL GetProcessTimes(HANDLE hProcess, LPFILETIME lpCreationTime, LPFILETIME lpExitTime,
  //   LPFILETIME lpKernelTime, LPFILETIME lpUserTime)
  GetProcessTimes: {
    parameters: ["usize", "buffer", "buffer", "buffer", "buffer"],
    result: "i32",
  },
  // HANDLE GetCurrentThread(void)
  GetCurrentThread: { parameters: [], result: "usize" },
  // DWORD GetCurrentProcessId(void)
  GetCurrentProcessId: { parameters: [], result: "u32" },
  // DWORD GetFullPathNameW(LPCWSTR lpFileName, DWORD nBufferLength, LPWSTR lpBuffer,
  //   LPWSTR *lpFilePart)
  // Diagnostics only: the tests show what Win32 would make of a name that winpipe refuses.
  GetFullPathNameW: { parameters: ["buffer", "u32", "buffer", "buffer"], result: "u32" },
  // BOOL GetProcessHandleCount(HANDLE hProcess, PDWORD pdwHandleCount)
  GetProcessHandleCount: { parameters: ["usize", "buffer"], result: "i32" },
} as const satisfies Record<string, NativeSymbol>;

type JsArg<T> = T extends "u8" | "u32" | "i32" ? number
  : T extends "usize" ? bigint
  : T extends "buffer" ? ArrayBufferView | null
  : never;
type JsResult<T> = T extends "u8" | "u32" | "i32" ? number
  : T extends "usize" ? bigint
  : T extends "void" ? void
  : never;
type JsArgs<P extends readonly NativeType[]> = { -readonly [I in keyof P]: JsArg<P[I]> };

/** The JS face of a symbol table, the same in every runtime. */
export type Bindings<S extends Record<string, NativeSymbol>> = {
  readonly [K in keyof S]: (...args: JsArgs<S[K]["parameters"]>) => JsResult<S[K]["result"]>;
};

/** kernel32, bound. */
export type Kernel32 = Bindings<typeof kernel32Symbols>;

/** The advapi32 functions behind the server's security descriptors. */
export const advapi32Symbols = {
  // BOOL ConvertStringSecurityDescriptorToSecurityDescriptorW(LPCWSTR StringSecurityDescriptor,
  //   DWORD StringSDRevision, PSECURITY_DESCRIPTOR *SecurityDescriptor,
  //   PULONG SecurityDescriptorSize)
  ConvertStringSecurityDescriptorToSecurityDescriptorW: {
    parameters: ["buffer", "u32", "buffer", "buffer"],
    result: "i32",
  },
  // BOOL ConvertSecurityDescriptorToStringSecurityDescriptorW(
  //   PSECURITY_DESCRIPTOR SecurityDescriptor, DWORD RequestedStringSDRevision,
  //   SECURITY_INFORMATION SecurityInformation, LPWSTR *StringSecurityDescriptor,
  //   PULONG StringSecurityDescriptorLen)
  ConvertSecurityDescriptorToStringSecurityDescriptorW: {
    parameters: ["usize", "u32", "u32", "buffer", "buffer"],
    result: "i32",
  },
  // DWORD GetSecurityInfo(HANDLE handle, SE_OBJECT_TYPE ObjectType,
  //   SECURITY_INFORMATION SecurityInfo, PSID *ppsidOwner, PSID *ppsidGroup, PACL *ppDacl,
  //   PACL *ppSacl, PSECURITY_DESCRIPTOR *ppSecurityDescriptor)
  GetSecurityInfo: {
    parameters: ["usize", "u32", "u32", "buffer", "buffer", "buffer", "buffer", "buffer"],
    result: "u32",
  },
  // BOOL OpenProcessToken(HANDLE ProcessHandle, DWORD DesiredAccess, PHANDLE TokenHandle)
  OpenProcessToken: { parameters: ["usize", "u32", "buffer"], result: "i32" },
  // BOOL GetTokenInformation(HANDLE TokenHandle, TOKEN_INFORMATION_CLASS TokenInformationClass,
  //   LPVOID TokenInformation, DWORD TokenInformationLength, PDWORD ReturnLength)
  GetTokenInformation: { parameters: ["usize", "u32", "buffer", "u32", "buffer"], result: "i32" },
  // BOOL ImpersonateNamedPipeClient(HANDLE hNamedPipe)
  ImpersonateNamedPipeClient: { parameters: ["usize"], result: "i32" },
  // BOOL RevertToSelf(void)
  RevertToSelf: { parameters: [], result: "i32" },
  // BOOL OpenThreadToken(HANDLE ThreadHandle, DWORD DesiredAccess, BOOL OpenAsSelf,
  //   PHANDLE TokenHandle)
  OpenThreadToken: { parameters: ["usize", "u32", "i32", "buffer"], result: "i32" },
  // BOOL ConvertSidToStringSidW(PSID Sid, LPWSTR *StringSid)
  ConvertSidToStringSidW: { parameters: ["usize", "buffer"], result: "i32" },
} as const satisfies Record<string, NativeSymbol>;

/** advapi32, bound. */
export type Advapi32 = Bindings<typeof advapi32Symbols>;

/**
 * The ntdll functions: a pipe's instance count and configuration (`listen` checks that its first
 * instance is the only one), and the process's handles (the leak tests' count).
 */
export const ntdllSymbols = {
  // NTSTATUS NtQueryInformationFile(HANDLE FileHandle, PIO_STATUS_BLOCK IoStatusBlock,
  //   PVOID FileInformation, ULONG Length, FILE_INFORMATION_CLASS FileInformationClass)
  NtQueryInformationFile: {
    parameters: ["usize", "buffer", "buffer", "u32", "u32"],
    result: "u32",
  },
  // NTSTATUS NtQuerySystemInformation(SYSTEM_INFORMATION_CLASS SystemInformationClass,
  //   PVOID SystemInformation, ULONG SystemInformationLength, PULONG ReturnLength)
  NtQuerySystemInformation: { parameters: ["u32", "buffer", "u32", "buffer"], result: "u32" },
  // NTSTATUS NtQueryObject(HANDLE Handle, OBJECT_INFORMATION_CLASS ObjectInformationClass,
  //   PVOID ObjectInformation, ULONG ObjectInformationLength, PULONG ReturnLength)
  NtQueryObject: { parameters: ["usize", "u32", "buffer", "u32", "buffer"], result: "u32" },
} as const satisfies Record<string, NativeSymbol>;

/** ntdll, bound. */
export type Ntdll = Bindings<typeof ntdllSymbols>;

/**
 * The signature of `PTP_WIN32_IO_CALLBACK`:
 * `VOID CALLBACK IoCompletionCallback(PTP_CALLBACK_INSTANCE Instance, PVOID Context,
 *   PVOID Overlapped, ULONG IoResult, ULONG_PTR NumberOfBytesTransferred, PTP_IO Io)`.
 */
export const ioCompletionCallback = {
  parameters: ["usize", "usize", "usize", "u32", "usize", "usize"],
  result: "void",
} as const satisfies NativeSymbol;

/** What an IoCompletionCallback hands to JS: the context, the OVERLAPPED, the result and count. */
export type IoCompletion = (
  context: bigint,
  overlapped: bigint,
  ioResult: number,
  bytesTransferred: number,
) => void;

/**
 * A thread-safe native callback. It keeps the process alive from creation until `close()`, and
 * is never un-ref'ed and re-ref'ed: in Deno a re-ref'ed callback no longer wakes the event loop
 * (measured here: completions then wait for an unrelated timer, 40x slower under `deno test`).
 */
export interface NativeCallback {
  /** The function pointer to hand to Win32. */
  readonly address: bigint;
  /** Marks a completion as owed (see the adapters for what each runtime needs). */
  owe(): void;
  /** Marks an owed completion as arrived. */
  paid(): void;
  /** Frees the callback. Only once no pool object can call it any more. */
  close(): void;
  /** Lets the process end while the callback lives (it is ref'ed when made). */
  unref(): void;
  /** Undoes unref(): the callback keeps the process alive again. */
  ref(): void;
}

/** Everything winpipe needs from a runtime's FFI. */
export interface Native {
  /** "deno" or "bun". */
  readonly runtime: string;
  readonly kernel32: Kernel32;
  /** advapi32, bound on first use. */
  advapi32(): Advapi32;
  /** ntdll, bound on first use. */
  ntdll(): Ntdll;
  /** The address of a view's first byte. The view must be over a `new ArrayBuffer` (never moves). */
  addressOf(view: ArrayBufferView): bigint;
  /** Copies `dst.byteLength` bytes from native memory at `address` into `dst`. */
  copyFrom(address: bigint, dst: Uint8Array): void;
  /**
   * `WaitForThreadpoolIoCallbacks(io, FALSE)` without blocking the JS thread on a callback that
   * waits for the JS thread (Deno's do): Deno runs it as a `nonblocking` call, Bun (whose
   * callbacks do not hold the pool thread) outside any callback.
   */
  waitForThreadpoolIoCallbacks(io: bigint): Promise<void>;
  /** Makes the process-wide thread-safe IoCompletionCallback. Called once. */
  threadSafeIoCallback(onCompletion: IoCompletion): NativeCallback;
}

// Win32 constants used across the package.
export const INVALID_HANDLE_VALUE = 0xffff_ffff_ffff_ffffn;
export const GENERIC_READ = 0x8000_0000;
export const GENERIC_WRITE = 0x4000_0000;
export const FILE_READ_ATTRIBUTES = 0x0080;
export const FILE_WRITE_ATTRIBUTES = 0x0100;
export const OPEN_EXISTING = 3;
export const FILE_FLAG_OVERLAPPED = 0x4000_0000;
export const FILE_FLAG_FIRST_PIPE_INSTANCE = 0x0008_0000;
export const SECURITY_SQOS_PRESENT = 0x0010_0000;
export const SECURITY_IDENTIFICATION = 0x0001_0000;
export const PIPE_ACCESS_INBOUND = 0x1;
export const PIPE_ACCESS_OUTBOUND = 0x2;
export const PIPE_ACCESS_DUPLEX = 0x3;
export const PIPE_TYPE_BYTE = 0x0;
export const PIPE_TYPE_MESSAGE = 0x4;
export const PIPE_READMODE_MESSAGE = 0x2;
export const PIPE_WAIT = 0x0;
export const PIPE_REJECT_REMOTE_CLIENTS = 0x8;
export const PIPE_UNLIMITED_INSTANCES = 255;
export const FILE_TYPE_PIPE = 3;
export const FILE_SKIP_COMPLETION_PORT_ON_SUCCESS = 0x1;
export const FILE_SKIP_SET_EVENT_ON_HANDLE = 0x2;
export const WAIT_OBJECT_0 = 0;
export const WAIT_TIMEOUT = 0x102;
export const FORMAT_MESSAGE_ALLOCATE_BUFFER = 0x100;
export const FORMAT_MESSAGE_IGNORE_INSERTS = 0x200;
export const FORMAT_MESSAGE_FROM_SYSTEM = 0x1000;
/** sizeof(OVERLAPPED) on x64: Internal, InternalHigh, Offset/OffsetHigh (or Pointer), hEvent. */
export const OVERLAPPED_SIZE = 32;
/** OVERLAPPED.InternalHigh: the bytes transferred, once the operation has completed. */
export const OVERLAPPED_INTERNAL_HIGH = 8;
/** Offset of OVERLAPPED.hEvent on x64. */
export const OVERLAPPED_HEVENT = 24;
/** sizeof(SECURITY_ATTRIBUTES) on x64: nLength, (pad), lpSecurityDescriptor, bInheritHandle. */
export const SECURITY_ATTRIBUTES_SIZE = 24;
