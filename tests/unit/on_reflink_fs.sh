#!/bin/bash
# Runs a test with FILEREPO_TEST_TMPDIR on a file system that clones files
# (XFS with reflink, on a loop device), so the content store's clone path is
# tested where the usual temporary directory (ext4, tmpfs) cannot clone.
# Exits 77 (ctest: skipped) when this machine cannot mount one: not root,
# no loop devices, no mkfs.xfs.  The image lives only for the test.
# Usage: on_reflink_fs.sh COMMAND [ARGS...]
set -euo pipefail

skip() { echo "on_reflink_fs: $*; skipped"; exit 77; }
[ "$(id -u)" -eq 0 ] || skip "not root"
command -v mkfs.xfs >/dev/null || skip "no mkfs.xfs (xfsprogs)"
grep -qw xfs /proc/filesystems || skip "the kernel has no xfs"

work=$(mktemp -d /tmp/filerepo-reflink-XXXXXX)
cleanup() {
    mountpoint -q "$work/mnt" && umount "$work/mnt"
    rm -rf "$work"
}
trap cleanup EXIT
mkdir "$work/mnt"
truncate -s 512M "$work/image"
mkfs.xfs -q -m reflink=1 "$work/image" || skip "mkfs.xfs failed"
mount -o loop "$work/image" "$work/mnt" 2>/dev/null || skip "cannot mount a loop device"
FILEREPO_TEST_TMPDIR="$work/mnt" "$@"
