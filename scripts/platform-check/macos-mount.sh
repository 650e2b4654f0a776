#!/usr/bin/env bash
# Manual check of `tandem mount` through macFUSE on macOS (issue 16), for a user of that
# platform to run and report back from: CI type-checks the macOS build but cannot run it.
# Needs macFUSE installed and allowed (System Settings > Privacy & Security), and tandem
# on PATH (or TANDEM=/path/to/tandem). Works in a fresh folder under $TMPDIR; prints
# "ok - ..." per check and stops at the first failure, showing the mount's log.
# Run: bash scripts/platform-check/macos-mount.sh
set -euo pipefail
tandem=${TANDEM:-tandem}
work=$(mktemp -d "${TMPDIR:-/tmp}/tandem-mount-check.XXXXXX")
src=$work/src tgt=$work/tgt state=$work/state
mkdir -p "$src" "$tgt"
echo "made before the mount" >"$src/before.txt"

ok() { echo "ok - $*"; }
fail() {
  echo "FAILED: $*"
  cat "$work/mount.out" 2>/dev/null || true
  "$tandem" unmount "$src" 2>/dev/null || true
  exit 1
}
wait_for() { # what, condition...
  local what=$1
  shift
  for _ in $(seq 100); do
    if "$@"; then return 0; fi
    sleep 0.2
  done
  fail "$what"
}
mounted() { mount | grep -q " on $(cd "$src" && pwd -P) "; }
same() { [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; }
gone() { [ ! -e "$1" ]; }

"$tandem" mount "$src" "$tgt" --foreground --state-dir "$state" >"$work/mount.out" 2>&1 &
pid=$!
wait_for "the mount over $src (macFUSE installed and allowed?)" mounted
wait_for "before.txt copied by the startup sync" same "$tgt/before.txt" "made before the mount"
ok "mounted over $src; the startup sync copied before.txt"

echo "written through the mount" >"$src/new.txt"
wait_for "new.txt replicated" same "$tgt/new.txt" "written through the mount"
ok "a file written through the mount was replicated"

echo "changed" >>"$src/new.txt"
wait_for "the change replicated" same "$tgt/new.txt" "written through the mount
changed"
ok "an append through the mount was replicated"

mkdir "$src/dir"
mv "$src/new.txt" "$src/dir/moved.txt"
wait_for "the rename replicated" same "$tgt/dir/moved.txt" "written through the mount
changed"
wait_for "the old name gone from the target" gone "$tgt/new.txt"
ok "mkdir and rename through the mount were replicated"

ln -s moved.txt "$src/dir/link"
chmod 600 "$src/dir/moved.txt"
wait_for "the symlink replicated" test -L "$tgt/dir/link"
wait_for "the mode replicated" test "$(stat -f %Lp "$tgt/dir/moved.txt")" = 600
ok "a symlink and a chmod through the mount were replicated"

rm -r "$src/dir"
wait_for "the delete replicated" gone "$tgt/dir"
ok "a folder deleted through the mount was deleted in the target (kept in its trash)"

"$tandem" changes "$src" --state-dir "$state" --limit 30 >"$work/changes.out" ||
  fail "tandem changes"
cat "$work/changes.out"
for what in new.txt dir/moved.txt dir/link; do
  grep -q "$what" "$work/changes.out" || fail "tandem changes does not list $what"
done
ok "tandem changes lists the writes, the rename, the symlink and the delete"

"$tandem" unmount "$src" || fail "tandem unmount"
wait_for "the mount process to end" bash -c "! kill -0 $pid 2>/dev/null"
mounted && fail "still mounted after tandem unmount"
same "$src/before.txt" "made before the mount" || fail "the source lost before.txt"
gone "$src/dir" || fail "the source still holds dir"
ok "unmounted; the source folder holds what went through the mount"
rm -rf "$work"
