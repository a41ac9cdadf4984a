#!/usr/bin/env bash
# Cargo runner for the demo kernel: boots the ELF given as $1 in QEMU (TCG), serial on
# stdout, and turns the isa-debug-exit status into a conventional exit status:
# 33 (the kernel wrote 0x10) -> 0, anything else -> 1.
set -u
kernel="$1"
shift
if ! command -v qemu-system-x86_64 >/dev/null 2>&1; then
    echo "qemu-system-x86_64 not found; install with: apt-get install -y qemu-system-x86" >&2
    exit 127
fi
# Phase 6 of the demo echoes lines typed into the serial input: feed it some after the
# boot (FILAMENT_SERIAL_INPUT, printf format; a byte sent before the kernel programs the
# UART is lost to its FIFO reset, hence the delay). tests/baremetal.rs instead waits for
# the phase-6 line before it writes.
input="${FILAMENT_SERIAL_INPUT:-hello from the host\nfilament\nbye\n}"
# -accel tcg: KVM is not usable on the CI machines. -no-reboot: a triple fault exits (with
# status 0, which is why only 33 counts). timeout: a hang must not hang CI.
timeout "${FILAMENT_QEMU_TIMEOUT:-60}" qemu-system-x86_64 \
    -accel tcg -machine pc -m 128M -nodefaults -no-reboot \
    -display none -serial stdio \
    -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
    -kernel "$kernel" "$@" < <(sleep "${FILAMENT_SERIAL_DELAY:-3}"; printf "$input")
status=$?
if [ "$status" -eq 33 ]; then
    echo "[kernel/run.sh] success: isa-debug-exit 0x10 (QEMU status 33)" >&2
    exit 0
fi
echo "[kernel/run.sh] FAILURE: QEMU exit status $status (35 check failed, 37 panic, 39 CPU exception, 0 triple fault, 124 timeout)" >&2
exit 1
