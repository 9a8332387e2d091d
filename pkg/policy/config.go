package policy

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/BurntSushi/toml"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Where the config is looked for. A file named by the environment must
// exist; the default file may be absent, which means built-in defaults.
const (
	DefaultConfigPath  = "/etc/seccomp-shim/config.toml"
	DefaultProfilesDir = "/etc/seccomp-shim/profiles"
	ConfigEnv          = "SECCOMP_SHIM_CONFIG"
)

// Where the shim keeps what holds until the next boot (the runtime cache, the
// 32-bit emulation answer). The environment moves it: tests point it at a
// temporary directory, so that they never fill the node's.
const (
	DefaultRunDir = "/run/seccomp-shim"
	RunDirEnv     = "SECCOMP_SHIM_RUN_DIR"
)

// RunDir is the directory named by SECCOMP_SHIM_RUN_DIR in getenv, or the
// default.
func RunDir(getenv func(string) string) string {
	if d := getenv(RunDirEnv); d != "" {
		return d
	}
	return DefaultRunDir
}

// What a rule does with a profile the engine already put in the spec.
const (
	ExistingKeep    = "keep"
	ExistingReplace = "replace"
	ExistingTighten = "tighten"
)

// Special values of Rule.Architectures.
const (
	ArchProfile = "profile" // the profile's own list
	ArchNative  = "native"  // the host's architecture only
	// ArchAuto is native alone where the kernel runs no 32-bit programs
	// (their sections of a filter would protect nothing and cost start
	// time), native and its 32-bit/x32 companions where it does.
	ArchAuto = "auto"
)

// ErrConfig marks every config error.
var ErrConfig = errors.New("invalid config")

// Config is the node's policy, read from config.toml.
type Config struct {
	Source string `toml:"-"`
	// RunDir is where architectures = "auto" keeps the kernel's answer
	// for this boot; "" asks the kernel every time.
	RunDir string `toml:"-"`
	// Compat32, when set, answers for the kernel whether it runs 32-bit
	// programs: tests give both answers with it.
	Compat32 func() bool    `toml:"-"`
	Runtime  RuntimeConfig  `toml:"runtime"`
	Profiles ProfilesConfig `toml:"profiles"`
	Log      LogConfig      `toml:"log"`
	Audit    AuditConfig    `toml:"audit"`
	Notify   NotifyConfig   `toml:"notify"`
	Rules    []Rule         `toml:"rule"`
}

// Audit modes and what to do when the agent can't be reached.
const (
	AuditAuto     = "auto"   // audit when the agent's socket answers
	AuditAlways   = "always" // audit; if the agent is down, see Unreachable
	AuditOff      = "off"
	AgentDegrade  = "degrade" // start without the audit, same protection
	AgentRefuse   = "refuse"  // fail the create
	DefaultSocket = "/run/seccomp-shim/agent.sock"
)

// AuditConfig routes denied syscalls through the notify agent, which answers
// with the same errno and records each one.
type AuditConfig struct {
	Mode        string `toml:"mode"`
	Socket      string `toml:"socket"`
	Unreachable string `toml:"unreachable"`
}

// RuntimeConfig names the real runtime.
type RuntimeConfig struct {
	// Path lists candidates: absolute paths, or names looked up in PATH.
	// The first that exists and is not seccomp-shim itself is used.
	Path StringList `toml:"path"`
}

// ProfilesConfig says where named profiles live.
type ProfilesConfig struct {
	Dir string `toml:"dir"`
	// CacheDir keeps profile files as resolved and validated, so a create
	// need not do it again (cache.go); "" turns it off.
	CacheDir string `toml:"cache_dir"`
}

// LogConfig says where the shim and hook record their decisions.
type LogConfig struct {
	File  string `toml:"file"`  // "" logs nowhere but errors to the engine
	Level string `toml:"level"` // error, warn, info or debug
}

// Rule picks what a container gets. Rules are tried in order; the first whose
// Match matches decides.
type Rule struct {
	Name            string     `toml:"name"`
	Match           Match      `toml:"match"`
	Profile         string     `toml:"profile"`
	Existing        string     `toml:"existing"`
	AllowUnconfined bool       `toml:"allow_unconfined"`
	AllowedProfiles []string   `toml:"allowed_profiles"`
	Architectures   StringList `toml:"architectures"`
	// Enforce = false runs the rule's profile in complain mode
	// (complain.go): what it would deny runs, and the agent audits it as a
	// would-be denial. Unset is true.
	Enforce *bool `toml:"enforce"`
	// AllowComplain lets a container ask for complain mode with the
	// annotation seccomp-shim.io/complain=true.
	AllowComplain bool `toml:"allow_complain"`
}

// Enforced reports whether the rule's profile is enforced, not run in
// complain mode.
func (r *Rule) Enforced() bool { return r.Enforce == nil || *r.Enforce }

// StringList reads a TOML string or array of strings, so `path = "runc"`
// and `path = ["runc", "crun"]` both work.
type StringList []string

// UnmarshalTOML implements toml.Unmarshaler.
func (l *StringList) UnmarshalTOML(v any) error {
	switch v := v.(type) {
	case string:
		*l = StringList{v}
	case []any:
		out := make(StringList, 0, len(v))
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return fmt.Errorf("expected strings, got %T", e)
			}
			out = append(out, s)
		}
		*l = out
	default:
		return fmt.Errorf("expected a string or an array of strings, got %T", v)
	}
	return nil
}

// DefaultRule is what a container gets when no rule matches, and all that
// exists without a config file: keep an engine's profile, and give Docker's
// default to a container that has none.
func DefaultRule() Rule {
	return Rule{Name: "built-in default", Profile: ProfileDefault, Existing: ExistingKeep}
}

// DefaultConfig is the policy without a config file.
func DefaultConfig() *Config {
	return &Config{
		Source:   "built-in defaults",
		Runtime:  RuntimeConfig{Path: StringList{"runc", "crun"}},
		Profiles: ProfilesConfig{Dir: DefaultProfilesDir},
		Log:      LogConfig{Level: "info"},
		Audit:    AuditConfig{Mode: AuditAuto, Socket: DefaultSocket, Unreachable: AgentDegrade},
	}
}

// Load reads the config named by SECCOMP_SHIM_CONFIG in getenv, or the
// default file; SECCOMP_SHIM_RUN_DIR sets its RunDir.
func Load(getenv func(string) string) (*Config, error) {
	path, explicit := getenv(ConfigEnv), true
	if path == "" {
		path, explicit = DefaultConfigPath, false
	}
	c, err := LoadFile(path, explicit)
	if c != nil {
		c.RunDir = RunDir(getenv)
	}
	return c, err
}

// LoadFile reads and validates a config file. A missing file is an error if
// it was named explicitly, and built-in defaults otherwise; but only "no file
// at all" is missing: a dangling symlink on the way to it, a directory, a
// FIFO or an unreadable file is an error, so that a broken install never
// silently runs with the defaults.
func LoadFile(path string, explicit bool) (*Config, error) {
	data, err := readRegular(path, MaxConfigSize)
	if errors.Is(err, os.ErrNotExist) {
		if link := danglingLink(path); link != "" {
			fix := "point it at the config"
			if !explicit {
				fix += ", or remove it for the built-in defaults"
			}
			return nil, fmt.Errorf("config %s: %s is a symlink to nothing (a dangling symlink): %s", path, link, fix)
		}
		if !explicit {
			return DefaultConfig(), nil
		}
	}
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return ParseConfig(path, data)
}

// danglingLink returns the symlink that makes path absent, if one does:
// the last component of path that exists, if it is a link to nothing.
func danglingLink(path string) string {
	for p := filepath.Clean(path); ; p = filepath.Dir(p) {
		if fi, err := os.Lstat(p); err == nil {
			if _, err := os.Stat(p); fi.Mode()&os.ModeSymlink != 0 && err != nil {
				return p
			}
			return ""
		}
		if p == filepath.Dir(p) {
			return ""
		}
	}
}

// openRegular opens path, following symlinks, only if it is a regular file.
// O_NONBLOCK makes a FIFO fail the check instead of blocking the open until
// a writer comes, which would hang every command, kill and delete included.
func openRegular(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("not a regular file (mode %s)", fi.Mode())
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// readAtMost reads f whole, failing if it holds more than max bytes.
func readAtMost(f *os.File, limit int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("larger than %d bytes", limit)
	}
	return data, nil
}

func readRegular(path string, limit int64) ([]byte, error) {
	f, err := openRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readAtMost(f, limit)
}

// ParseConfig decodes and validates config data; source names it in errors.
func ParseConfig(source string, data []byte) (*Config, error) {
	if err := checkNesting(data, maxConfigDepth); err != nil {
		return nil, fmt.Errorf("config %s: %w: %w", source, ErrConfig, err)
	}
	c := DefaultConfig()
	c.Source = source
	md, err := toml.Decode(string(data), c)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w: %w", source, ErrConfig, err)
	}
	// A misspelt key would silently fall back to a default: refuse it.
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return nil, fmt.Errorf("config %s: %w: unknown keys %s", source, ErrConfig, strings.Join(keys, ", "))
	}
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("config %s: %w: %w", source, ErrConfig, err)
	}
	return c, nil
}

// checkNesting fails if tables and arrays nest deeper than limit, before the
// decoder can run out of stack (it recurses) or memory (each table of a
// dotted key copies the keys above it). Depth counts brackets, braces and
// the dots of dotted keys and table headers; brackets and dots in strings
// and comments don't count. toml.Decode has no such limit (BurntSushi/toml
// v1), hence this pre-scan.
func checkNesting(data []byte, limit int) error {
	var opened []int // what each open bracket or brace added to depth
	depth, dots, key := 0, 0, 0
	for i := 0; i < len(data); i++ {
		switch data[i] {
		case '#':
			for i < len(data) && data[i] != '\n' {
				i++
			}
			dots, key = 0, 0
		case '"', '\'':
			i = skipString(data, i)
		case '.':
			dots++
		case '=':
			// The value nests under every part of its key.
			key, dots = dots, 0
		case '[', '{':
			opened = append(opened, 1+key)
			depth += 1 + key
			dots, key = 0, 0
		case ']', '}':
			if n := len(opened); n > 0 {
				depth -= opened[n-1]
				opened = opened[:n-1]
			}
			dots, key = 0, 0
		case ',', '\n':
			dots, key = 0, 0
		}
		if depth+dots > limit {
			return fmt.Errorf("tables or arrays nested deeper than %d levels", limit)
		}
	}
	return nil
}

// skipString returns the index of the last byte of the TOML string that
// starts at data[i], or len(data) if it doesn't end. An unterminated or
// otherwise broken string is the decoder's to report.
func skipString(data []byte, i int) int {
	q := data[i]
	run := func(j int) int {
		n := 0
		for j+n < len(data) && data[j+n] == q {
			n++
		}
		return n
	}
	multi := run(i) >= 3
	if multi {
		i += 3
	} else {
		i++
	}
	for ; i < len(data); i++ {
		switch c := data[i]; {
		case c == '\\' && q == '"':
			i++
		case c == '\n' && !multi:
			return i
		case c == q && !multi:
			return i
		case c == q:
			// A multi-line string may end in up to two quotes of its own.
			if n := run(i); n >= 3 {
				return i + n - 1
			} else {
				i += n - 1
			}
		}
	}
	return len(data)
}

func (c *Config) validate() error {
	var errs []error
	if len(c.Runtime.Path) == 0 {
		errs = append(errs, errors.New("runtime.path: empty"))
	}
	for i, p := range c.Runtime.Path {
		if p == "" || (strings.Contains(p, "/") && !filepath.IsAbs(p)) {
			errs = append(errs, fmt.Errorf("runtime.path[%d] %q: must be an absolute path or a command name", i, p))
		}
	}
	if c.Profiles.Dir != "" && !filepath.IsAbs(c.Profiles.Dir) {
		errs = append(errs, fmt.Errorf("profiles.dir %q: must be an absolute path", c.Profiles.Dir))
	}
	if c.Profiles.CacheDir != "" && !filepath.IsAbs(c.Profiles.CacheDir) {
		errs = append(errs, fmt.Errorf("profiles.cache_dir %q: must be an absolute path", c.Profiles.CacheDir))
	}
	if c.Log.File != "" && !filepath.IsAbs(c.Log.File) {
		errs = append(errs, fmt.Errorf("log.file %q: must be an absolute path", c.Log.File))
	}
	if !slices.Contains([]string{"error", "warn", "info", "debug"}, c.Log.Level) {
		errs = append(errs, fmt.Errorf("log.level %q: must be error, warn, info or debug", c.Log.Level))
	}
	if !slices.Contains([]string{AuditAuto, AuditAlways, AuditOff}, c.Audit.Mode) {
		errs = append(errs, fmt.Errorf("audit.mode %q: must be auto, always or off", c.Audit.Mode))
	}
	if !filepath.IsAbs(c.Audit.Socket) {
		errs = append(errs, fmt.Errorf("audit.socket %q: must be an absolute path", c.Audit.Socket))
	}
	if !slices.Contains([]string{AgentDegrade, AgentRefuse}, c.Audit.Unreachable) {
		errs = append(errs, fmt.Errorf("audit.unreachable %q: must be degrade or refuse", c.Audit.Unreachable))
	}
	for i := range c.Notify.Rules {
		r := &c.Notify.Rules[i]
		if r.Name == "" {
			r.Name = fmt.Sprintf("notify.rule[%d]", i)
		}
		if err := r.validate(); err != nil {
			errs = append(errs, fmt.Errorf("notify.rule[%d] (%s): %w", i, r.Name, err))
		}
	}
	errs = append(errs, racyContinues(c.Notify.Rules)...)
	for i := range c.Rules {
		r := &c.Rules[i]
		if r.Name == "" {
			r.Name = fmt.Sprintf("rule[%d]", i)
		}
		if err := r.validate(); err != nil {
			errs = append(errs, fmt.Errorf("rule[%d] (%s): %w", i, r.Name, err))
		}
		// Complain mode is the agent's answer: without one, nothing would
		// let the would-be denials run or record them.
		if c.Audit.Mode == AuditOff && (!r.Enforced() || r.AllowComplain) {
			key := "enforce = false"
			if r.Enforced() {
				key = "allow_complain = true"
			}
			errs = append(errs, fmt.Errorf("rule[%d] (%s): %s: complain mode needs the notify agent, and audit.mode is off", i, r.Name, key))
		}
	}
	return errors.Join(errs...)
}

func (r *Rule) validate() error {
	var errs []error
	if r.Profile == "" {
		r.Profile = ProfileDefault
	}
	if r.Existing == "" {
		r.Existing = ExistingKeep
	}
	if len(r.Architectures) == 0 {
		r.Architectures = StringList{ArchProfile}
	}
	for _, n := range append([]string{r.Profile}, r.AllowedProfiles...) {
		if !ValidName(n) {
			errs = append(errs, fmt.Errorf("profile name %q: must be %s", n, profileNameRule))
		}
		if n == ProfileUnconfined && !r.AllowUnconfined {
			errs = append(errs, errors.New(`profile "unconfined" needs allow_unconfined = true`))
		}
	}
	if !slices.Contains([]string{ExistingKeep, ExistingReplace, ExistingTighten}, r.Existing) {
		errs = append(errs, fmt.Errorf("existing %q: must be keep, replace or tighten", r.Existing))
	}
	if err := checkArches(r.Architectures); err != nil {
		errs = append(errs, err)
	}
	if err := r.Match.validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func checkArches(a StringList) error {
	if len(a) == 1 && (a[0] == ArchProfile || a[0] == ArchNative || a[0] == ArchAuto) {
		return nil
	}
	for _, s := range a {
		if _, ok := specArch(specs.Arch(s)); !ok {
			return fmt.Errorf("architectures: %q is not %q, %q, %q or an SCMP_ARCH_* name", s, ArchProfile, ArchNative, ArchAuto)
		}
	}
	return nil
}

// Limits on what is read: a config or a profile is a few kilobytes, and
// anything far beyond that is a mistake (a profile linked to /dev/zero) or
// hostile. The depth keeps the TOML decoder, which recurses, within its stack.
const (
	MaxConfigSize  = 1 << 20
	MaxProfileSize = 4 << 20
	maxConfigDepth = 64
)
