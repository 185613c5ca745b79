# tests/cli/: the smove command line as people type it: argument order, help,
# qemu-img's habits side by side with qemu-img, one vocabulary, installation.
cli_shell_tests = tests/cli/test-args-anywhere.sh tests/cli/test-qemu-img-compare.sh \
	tests/cli/test-qemu-img-json.sh tests/cli/test-qemu-img-create-convert.sh \
	tests/cli/test-move-vocabulary.sh tests/cli/test-tls-vocabulary.sh \
	tests/cli/test-progress.sh tests/cli/test-report.sh tests/cli/test-install.sh
TESTS += $(cli_shell_tests)
EXTRA_DIST += $(cli_shell_tests) tests/cli/fake-vm.py
