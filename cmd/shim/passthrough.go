package main

// passthrough.c holds a constructor that runs before the Go runtime: see
// internal/passthrough. Being in package main, it is in the seccomp-shim binary only.

/*
#cgo CFLAGS: -Wall -O2
*/
import "C"
