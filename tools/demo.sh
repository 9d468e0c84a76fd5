#!/usr/bin/env bash
# The main job on the bundled demo image (a 16 MiB ext4 disk, zstd-compressed qcow2 with one snapshot):
# inspect it, extract its guest bytes to raw, check them, and read a file's text from inside the disk.
set -euo pipefail
cd "$(dirname "$0")/.."
qcow() { node packages/cli/dist/cli.js "$@"; }
image=fixtures/demo/demo.qcow2
out=${TMPDIR:-/tmp}/qcow-demo.raw

echo "== qcow info $image"
qcow info "$image"
echo
echo "== qcow map --output=json $image (first lines)"
qcow map --output=json "$image" | head -n 5
echo
echo "== qcow convert -O raw $image@installed $out"
qcow convert -p -O raw "$image@installed" "$out"
echo "== qcow compare $image $out"
qcow compare "$image" "$out"
echo
echo "== a file inside the guest's ext4 file system:"
grep -a -o 'Hello from inside a qcow2 image[^.]*\.' "$out" | head -n 1
rm -f "$out"
