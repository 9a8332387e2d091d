package main

import "golang.org/x/sys/unix"

// i386 libcs may still reach socket(2) through the multiplexer.
func init() { syscalls["socketcall"] = unix.SYS_SOCKETCALL }
