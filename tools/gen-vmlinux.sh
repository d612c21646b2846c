#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Regenerate the committed vmlinux.h from the running kernel's BTF.
# CO-RE relocations make the result usable on other kernels; regenerate only
# to reach types or fields that a newer kernel added.
set -euo pipefail
cd "$(dirname "$0")/.."
arch=$(uname -m | sed 's/x86_64/x86/;s/aarch64/arm64/')
btf=${1:-/sys/kernel/btf/vmlinux}
[ -r "$btf" ] || { echo "gen-vmlinux.sh: $btf not readable (kernel without BTF?)" >&2; exit 1; }
mkdir -p "vmlinux/$arch"
bpftool btf dump file "$btf" format c > "vmlinux/$arch/vmlinux.h.tmp"
mv "vmlinux/$arch/vmlinux.h.tmp" "vmlinux/$arch/vmlinux.h"
echo "wrote vmlinux/$arch/vmlinux.h from $btf ($(uname -r))"
