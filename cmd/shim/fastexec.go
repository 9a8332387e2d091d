package main

// fastexec.c holds the pass-through that runs before glibc and the Go
// runtime start: see internal/passthrough. Being in package main, it is in
// the seccomp-shim binary only. On amd64 it is the ELF entry point (-e),
// which must not touch the stack protector's canary: there is no TLS yet.

/*
#cgo CFLAGS: -Wall -O2 -fno-stack-protector
#cgo amd64 LDFLAGS: -Wl,-e,seccompshimentry
*/
import "C"
