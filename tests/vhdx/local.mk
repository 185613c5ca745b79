# tests/vhdx/: tests of the vhdx work.
