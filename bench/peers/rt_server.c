// Round-trip server, plain Win32 C: echoes every byte back, one connection at a time, with
// blocking reads and writes. The reference for the round-trip bench (bench/ipc_windows.ts);
// the same command line as rt_server.cjs:
//
//   rt_server.exe PIPE READY_FILE
//
// READY_FILE is written once the pipe exists. Runs until it is killed.
#include <windows.h>
#include <stdio.h>
#include <stdlib.h>

#define BUFFER_SIZE 65536

static void fail(const char *what) {
  fprintf(stderr, "rt_server: %s failed: error %lu\n", what, GetLastError());
  exit(1);
}

static HANDLE instance(const wchar_t *name, BOOL first) {
  HANDLE h = CreateNamedPipeW(
      name, PIPE_ACCESS_DUPLEX | (first ? FILE_FLAG_FIRST_PIPE_INSTANCE : 0),
      PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT | PIPE_REJECT_REMOTE_CLIENTS,
      PIPE_UNLIMITED_INSTANCES, BUFFER_SIZE, BUFFER_SIZE, 0, NULL);
  if (h == INVALID_HANDLE_VALUE) fail("CreateNamedPipeW");
  return h;
}

int wmain(int argc, wchar_t **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: rt_server PIPE READY_FILE\n");
    return 2;
  }
  const wchar_t *name = argv[1];
  static char buffer[BUFFER_SIZE];
  HANDLE pipe = instance(name, TRUE);
  HANDLE ready = CreateFileW(argv[2], GENERIC_WRITE, FILE_SHARE_READ | FILE_SHARE_DELETE, NULL,
                             CREATE_ALWAYS, FILE_ATTRIBUTE_NORMAL, NULL);
  DWORD n;
  if (ready == INVALID_HANDLE_VALUE || !WriteFile(ready, "ready", 5, &n, NULL)) {
    fail("writing the ready file");
  }
  CloseHandle(ready);
  for (;;) {
    if (!ConnectNamedPipe(pipe, NULL) && GetLastError() != ERROR_PIPE_CONNECTED) {
      fail("ConnectNamedPipe");
    }
    // Echo until the client goes (ERROR_BROKEN_PIPE) or anything fails; then the next client.
    for (;;) {
      DWORD got = 0, sent = 0;
      if (!ReadFile(pipe, buffer, BUFFER_SIZE, &got, NULL)) break;
      if (!WriteFile(pipe, buffer, got, &sent, NULL) || sent != got) break;
    }
    DisconnectNamedPipe(pipe);
  }
}
