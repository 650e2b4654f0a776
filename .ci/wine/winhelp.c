/* A helper for .ci/wine-sync (issue 16): what a Windows program does to a file that
 * tandem.exe then meets, done through the Windows API under Wine.
 *   winhelp attrs FILE              prints FILE's attributes (hex)
 *   winhelp hide FILE               sets the hidden attribute
 *   winhelp show FILE               clears it
 *   winhelp hold FILE READY RELEASE opens FILE without FILE_SHARE_DELETE, creates READY,
 *                                   and holds it until RELEASE exists
 *   winhelp symlink LINK TARGET     makes a symbolic link to a file (prints the error) */
#include <windows.h>
#include <stdio.h>
#include <string.h>

static int usage(void) { fputs("usage: winhelp attrs|hide|show|hold|symlink ...\n", stderr); return 2; }

int main(int argc, char **argv) {
  if (argc < 3) return usage();
  if (!strcmp(argv[1], "attrs")) {
    DWORD a = GetFileAttributesA(argv[2]);
    if (a == INVALID_FILE_ATTRIBUTES) { printf("error %lu\n", GetLastError()); return 1; }
    printf("%lx\n", a);
    return 0;
  }
  if (!strcmp(argv[1], "hide") || !strcmp(argv[1], "show")) {
    DWORD a = GetFileAttributesA(argv[2]);
    DWORD to = !strcmp(argv[1], "hide") ? (a & ~FILE_ATTRIBUTE_NORMAL) | FILE_ATTRIBUTE_HIDDEN
                                        : a & ~FILE_ATTRIBUTE_HIDDEN;
    if (a == INVALID_FILE_ATTRIBUTES || !SetFileAttributesA(argv[2], to ? to : FILE_ATTRIBUTE_NORMAL)) {
      printf("error %lu\n", GetLastError()); return 1;
    }
    return 0;
  }
  if (!strcmp(argv[1], "hold") && argc == 5) {
    HANDLE h = CreateFileA(argv[2], GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE, NULL,
                           OPEN_EXISTING, 0, NULL);
    if (h == INVALID_HANDLE_VALUE) { printf("error %lu\n", GetLastError()); return 1; }
    HANDLE r = CreateFileA(argv[3], GENERIC_WRITE, 0, NULL, CREATE_ALWAYS, 0, NULL);
    CloseHandle(r);
    while (GetFileAttributesA(argv[4]) == INVALID_FILE_ATTRIBUTES) Sleep(50);
    CloseHandle(h);
    return 0;
  }
  if (!strcmp(argv[1], "symlink") && argc == 4) {
    if (!CreateSymbolicLinkA(argv[2], argv[3], 0)) { printf("error %lu\n", GetLastError()); return 1; }
    return 0;
  }
  return usage();
}
