# tests/memsync/: tests of the memsync work.
