# memsync/: smove's KVM virtual machine, its devices and the test guest.
