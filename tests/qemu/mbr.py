#!/usr/bin/python3
# tests/qemu/mbr.py FILE: writes into the first sector of FILE a boot sector
# that prints "smove-mbr-ok" on COM1 and halts, so that a test can see the
# BIOS boot from the VM's first disk (served by smove over NBD).
import sys

code = bytes([
    0xFA,                    # cli
    0x31, 0xC0,              # xor ax, ax
    0x8E, 0xD8,              # mov ds, ax
    0xBE, 0x16, 0x7C,        # mov si, 0x7c16 (the message)
    0xBA, 0xF8, 0x03,        # mov dx, 0x3f8 (COM1)
    0xAC,                    # next: lodsb
    0x84, 0xC0,              # test al, al
    0x74, 0x03,              # jz done
    0xEE,                    # out dx, al
    0xEB, 0xF8,              # jmp next
    0xF4,                    # done: hlt
    0xEB, 0xFD,              # jmp done
]) + b"smove-mbr-ok\r\n\0"
assert len(code) == 0x16 + 15
sector = code + bytes(510 - len(code)) + b"\x55\xaa"
with open(sys.argv[1], "r+b") as f:
    f.write(sector)
