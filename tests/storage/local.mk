# tests/storage/: tests of the storage work.
