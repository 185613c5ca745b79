# tests/vpc/: tests of the vpc work.
