module github.com/seccomp-shim/seccomp-shim

go 1.26.8

require (
	github.com/BurntSushi/toml v1.6.0
	github.com/moby/profiles/seccomp v0.3.0
	github.com/opencontainers/runtime-spec v1.3.0
	github.com/seccomp/libseccomp-golang v0.11.1
	golang.org/x/sys v0.33.0
)
