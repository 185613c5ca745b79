# storage/: byte-I/O backends (NBD, HTTP), the mirror engine and the nbdkit
# plugin. Filled by the storage work; depends on vhd/.
