# tests/cli/: the smove command line as people type it: argument order, help,
# qemu-img's habits side by side with qemu-img, one vocabulary, installation.
cli_shell_tests = tests/cli/test-args-anywhere.sh
TESTS += $(cli_shell_tests)
EXTRA_DIST += $(cli_shell_tests)
