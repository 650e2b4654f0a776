# Shared by the by-hand measurements: a fresh ext4 (with its journal) on a sparse image
# through a loop device with direct I/O, as `scripts/bench/run mount-io` uses, and a
# `tandem mount --foreground` on it. Needs root. Sourced, not run.
set -euo pipefail
T=${TANDEM:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)/target/release/tandem}
W=$(mktemp -d /tmp/tandem-by-hand.XXXXXX)
F=$W/fs
fresh_fs() { # SIZE (truncate syntax)
  umount "$F" 2>/dev/null || true
  [ -n "${LOOP:-}" ] && losetup -d "$LOOP"
  rm -f "$W/fs.img"; truncate -s "$1" "$W/fs.img"; mkfs.ext4 -q -F "$W/fs.img"
  LOOP=$(losetup --direct-io=on --find --show "$W/fs.img"); mkdir -p "$F"; mount "$LOOP" "$F"
  mkdir -p "$F/src" "$F/tgt" "$F/state" "$F/plain"
}
start_mount() { # env for the daemon may be given before the call (TANDEM_TIMINGS=1 ...)
  "$T" mount "$F/src" "$F/tgt" --state-dir "$F/state" --foreground >"$W/mount.log" 2>&1 &
  MP=$!
  until stat -f -c %T "$F/src" | grep -q fuse; do sleep 0.05; done
}
stop_mount() { kill "$MP"; wait "$MP" || true; }
settle() { # until tandem status shows no backlog and nothing pending
  until "$T" status "$F/src" --json 2>/dev/null | python3 -c "import json,sys; s=json.load(sys.stdin); t=s.get('targets',[s])[0]; sys.exit(0 if t.get('journal_backlog',1)==0 and (t.get('mounted') or {}).get('pending_paths',1)==0 else 1)"; do sleep 0.05; done
}
tm() { local s e; s=$(date +%s.%N); "$@"; e=$(date +%s.%N); printf "%.2f " "$(echo "$e-$s" | bc)"; }
cpu_ticks() { awk '{print $14+$15}' "/proc/$MP/stat"; }
cleanup() { [ -n "${MP:-}" ] && kill "$MP" 2>/dev/null && wait "$MP" 2>/dev/null; umount "$F" 2>/dev/null || true; [ -n "${LOOP:-}" ] && losetup -d "$LOOP"; rm -rf "$W"; }
trap cleanup EXIT
