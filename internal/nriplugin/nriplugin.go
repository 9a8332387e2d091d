// Package nriplugin is seccomp-agent's NRI plugin (github.com/containerd/nri):
// containerd 2.x shows it each container at CreateContainer, and it answers
// with the seccomp policy the node's rules give that container, computed by
// internal/inject exactly as seccomp-shim and seccomp-hook compute it. Only
// the way the spec arrives differs: NRI's Container, turned back into the
// OCI fields the policy reads (Spec), and an adjustment instead of a
// rewritten config.json.
package nriplugin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/containerd/nri/pkg/api"
	"github.com/containerd/nri/pkg/stub"
	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/seccomp-shim/seccomp-shim/internal/inject"
	"github.com/seccomp-shim/seccomp-shim/internal/logfile"
	"github.com/seccomp-shim/seccomp-shim/pkg/policy"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// The plugin's NRI identity: "90-seccomp-shim". NRI calls plugins in index
// order; 90 puts ours after plugins that add annotations or devices, so the
// policy sees the container as they left it. A validator's
// required_plugins names it "seccomp-shim".
const (
	Name  = "seccomp-shim"
	Index = "90"
)

// DefaultSocket is where containerd and CRI-O serve NRI.
const DefaultSocket = api.DefaultSocketPath

// defaultCaps are the capabilities containerd's CRI gives a container that
// adds or drops none (containerd pkg/oci defaultUnixCaps). NRI does not pass
// a container's capabilities, and Docker's default profile allows a few
// syscalls by capability (chroot for CAP_SYS_CHROOT...): resolved for this
// set, a profile is what the shim gives the same container under the same
// engine, unless the pod changes its capabilities.
var defaultCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
	"CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// What the decision log says of the capabilities a profile the plugin
// resolved was resolved for (Caps).
const (
	// AssumedCaps: defaultCaps, NRI showing none. A pod that adds
	// capabilities, or a privileged one that asked for no profile, gets it
	// without the syscalls those unlock (stricter than the shim gives it);
	// one that drops CAP_SYS_CHROOT keeps chroot, which the kernel then
	// refuses it.
	AssumedCaps = "containerd's defaults (NRI does not pass the container's)"
	// PrivilegedCaps: every capability, for a container that asked for
	// RuntimeDefault or Localhost and got no policy, which containerd 2.3+
	// (the runtimes Supported) does only to a privileged one.
	PrivilegedCaps = "all (privileged: containerd set no policy for the profile it asked for)"
)

// Caps is the capability set the policy resolves ctr's profile for, and
// what the decision log says of it.
func Caps(ctr *api.Container) ([]string, string) {
	if askedProfile(ctr) && ctr.GetLinux().GetSeccompPolicy() == nil {
		return allCaps(), PrivilegedCaps
	}
	return defaultCaps, AssumedCaps
}

// askedProfile: the container asked for RuntimeDefault or Localhost.
func askedProfile(ctr *api.Container) bool {
	switch ctr.GetLinux().GetSeccompProfile().GetProfileType() {
	case api.SecurityProfile_RUNTIME_DEFAULT, api.SecurityProfile_LOCALHOST:
		return true
	}
	return false
}

// allCaps is what containerd's WithPrivileged gives.
func allCaps() []string {
	var all []string
	for _, c := range capability.ListKnown() {
		all = append(all, "CAP_"+strings.ToUpper(c.String()))
	}
	return all
}

// annotationPrefix: a pod's annotations under it reach its containers'
// policy, as `pod_annotations = ["seccomp-shim.io/*"]` makes them on the
// runtime wrapper's path. A container's own annotation wins.
const annotationPrefix = "seccomp-shim.io/"

// Spec is the OCI spec the policy reads, made from what NRI shows of the
// container: annotations (the pod's seccomp-shim.io/ ones added), args,
// env, capabilities (Caps) and linux.seccomp, the policy the engine
// has set so far (none for a CRI Unconfined, containerd's default for
// RuntimeDefault, the file's for Localhost).
func Spec(pod *api.PodSandbox, ctr *api.Container) ([]byte, error) {
	set, _ := Caps(ctr)
	return spec(pod, ctr, set)
}

// spec is Spec with the capabilities set.
func spec(pod *api.PodSandbox, ctr *api.Container, set []string) ([]byte, error) {
	ann := maps.Clone(ctr.GetAnnotations())
	if ann == nil {
		ann = map[string]string{}
	}
	for k, v := range pod.GetAnnotations() {
		if _, ok := ann[k]; !ok && strings.HasPrefix(k, annotationPrefix) {
			ann[k] = v
		}
	}
	if _, ours := ann["io.kubernetes.cri.sandbox-id"]; ours && pod != nil {
		// containerd shows the spec's annotations overlaid with the CRI
		// config's (a device plugin's, through the kubelet), which may
		// name another namespace, pod or container type; its own in the
		// spec, which the shim reads, say what NRI says of the container.
		maps.Copy(ann, map[string]string{
			"io.kubernetes.cri.container-type":    "container", // NRI never shows a sandbox's
			"io.kubernetes.cri.sandbox-id":        ctr.GetPodSandboxId(),
			"io.kubernetes.cri.sandbox-namespace": pod.GetNamespace(),
			"io.kubernetes.cri.sandbox-name":      pod.GetName(),
			"io.kubernetes.cri.container-name":    ctr.GetName(),
		})
	}
	caps := &specs.LinuxCapabilities{Bounding: set, Effective: set, Permitted: set}
	var spec struct {
		Version     string            `json:"ociVersion"`
		Annotations map[string]string `json:"annotations,omitempty"`
		Process     specs.Process     `json:"process"`
		Linux       struct {
			Seccomp *specs.LinuxSeccomp `json:"seccomp,omitempty"`
		} `json:"linux"`
	}
	spec.Version, spec.Annotations = specs.Version, ann
	spec.Process = specs.Process{Args: ctr.GetArgs(), Env: ctr.GetEnv(), Capabilities: caps}
	spec.Linux.Seccomp = ToOCI(ctr.GetLinux().GetSeccompPolicy())
	return json.Marshal(spec)
}

// ToOCI is api.FromOCILinuxSeccomp's inverse, which NRI lacks.
func ToOCI(s *api.LinuxSeccomp) *specs.LinuxSeccomp {
	if s == nil {
		return nil
	}
	o := &specs.LinuxSeccomp{
		DefaultAction:    specs.LinuxSeccompAction(s.DefaultAction),
		ListenerPath:     s.ListenerPath,
		ListenerMetadata: s.ListenerMetadata,
	}
	if s.DefaultErrno != nil {
		v := uint(s.DefaultErrno.Value)
		o.DefaultErrnoRet = &v
	}
	for _, a := range s.Architectures {
		o.Architectures = append(o.Architectures, specs.Arch(a))
	}
	for _, f := range s.Flags {
		o.Flags = append(o.Flags, specs.LinuxSeccompFlag(f))
	}
	if len(s.Syscalls) > 0 {
		o.Syscalls = api.ToOCILinuxSyscalls(s.Syscalls)
		for i := range o.Syscalls {
			if len(o.Syscalls[i].Args) == 0 {
				o.Syscalls[i].Args = nil
			}
		}
	}
	return o
}

// Adjust is the decision: the policy's profile for ctr in pod, as an NRI
// adjustment (nil where the engine's policy stays as it is). agent is
// inject.Spec's: nil if the notify agent answers. Errors name the container,
// and the rule and reason where the policy refuses it.
func Adjust(cfg *policy.Config, pod *api.PodSandbox, ctr *api.Container, agent error) (*api.ContainerAdjustment, *policy.Result, error) {
	data, err := Spec(pod, ctr)
	if err != nil {
		return nil, nil, err
	}
	out, res, err := inject.Spec(cfg, data, ctr.GetId(), Source(pod, ctr), agent)
	if err != nil {
		return nil, nil, err
	}
	if bytes.Equal(out, data) {
		return nil, res, nil
	}
	var after struct {
		Linux struct {
			Seccomp *specs.LinuxSeccomp `json:"seccomp"`
		} `json:"linux"`
	}
	if err := json.Unmarshal(out, &after); err != nil {
		return nil, nil, err
	}
	if after.Linux.Seccomp == nil {
		// NRI can set a policy, not remove one: the engine's stays, which
		// protects more than the policy asks.
		res.Action, res.EngineKept = policy.ActionKept, true
		res.Warnings = append(res.Warnings, "policy says unconfined, but NRI cannot remove the engine's seccomp profile: kept")
		return nil, res, nil
	}
	// NRI v0.12's runtime side (generate.AdjustSeccompPolicy, which
	// containerd 2.4 runs) drops defaultErrnoRet, and runc then answers
	// EPERM: the same denials with another errno, said, not refused.
	if e := after.Linux.Seccomp.DefaultErrnoRet; e != nil && *e != uint(unix.EPERM) {
		res.Warnings = append(res.Warnings, fmt.Sprintf("NRI does not pass defaultErrnoRet: syscalls the profile does not name fail with EPERM, not errno %d", *e))
	}
	adj := &api.ContainerAdjustment{}
	adj.SetLinuxSeccompPolicy(api.FromOCILinuxSeccomp(after.Linux.Seccomp))
	return adj, res, nil
}

// Source names the container in errors and logs: namespace/pod/container.
func Source(pod *api.PodSandbox, ctr *api.Container) string {
	return fmt.Sprintf("container %s/%s/%s", pod.GetNamespace(), pod.GetName(), ctr.GetName())
}

// Plugin is the NRI plugin. Each CreateContainer loads the policy, as each
// create of the shim does, so an edit applies to the next container and a
// broken file refuses it.
type Plugin struct {
	Load    func() (*policy.Config, error)
	Log     *logrus.Logger // the agent's own log: connections, and each error
	Metrics *Metrics

	registered atomic.Bool // since Run last looked: a success resets its failure count
}

// ErrRuntime is Configure's error for a runtime the plugin does not
// register with.
var ErrRuntime = errors.New("runtime not supported by the NRI plugin")

// Supported says whether the NRI runtime (as it names itself at
// registration) is one the plugin's decisions hold on: containerd 2.3 or
// later. Before 2.3, containerd does not show plugins the container's OCI
// seccomp policy (containerd#12768): a RuntimeDefault or Localhost profile
// looks like none, and `existing` would replace what it should keep or
// tighten. Before 2.1 it ignores a seccomp adjustment altogether, and the
// container would run with what the pod asked, logged as injected. Other
// runtimes (CRI-O) are untested. Refusing to register fails closed: with
// required_plugins nothing starts, and the agent's log says why.
func Supported(runtime, version string) error {
	var major, minor int
	if runtime == "containerd" {
		if _, err := fmt.Sscanf(strings.TrimPrefix(version, "v"), "%d.%d", &major, &minor); err == nil && (major > 2 || major == 2 && minor >= 3) {
			return nil
		}
	}
	return fmt.Errorf("%s %s: %w: it needs containerd 2.3 or later, which shows plugins the seccomp policy it made (containerd#12768); use seccomp-shim or seccomp-hook on this node (docs/nri.md)", runtime, version, ErrRuntime)
}

// Configure is stub.ConfigureInterface's: the runtime names itself first,
// and the plugin does not register with one it can't serve (Supported).
func (p *Plugin) Configure(_ context.Context, _, runtime, version string) (api.EventMask, error) {
	if err := Supported(runtime, version); err != nil {
		return 0, err
	}
	p.Log.WithFields(logrus.Fields{"runtime": runtime, "version": version}).Debug("NRI runtime")
	return 0, nil // the events of the methods Plugin has
}

// Synchronize is stub.SynchronizeInterface's: NRI calls it once registered,
// with the pods and containers that exist.
func (p *Plugin) Synchronize(_ context.Context, pods []*api.PodSandbox, ctrs []*api.Container) ([]*api.ContainerUpdate, error) {
	p.Metrics.connected.Set(1)
	p.registered.Store(true)
	p.Log.WithFields(logrus.Fields{"plugin": Index + "-" + Name, "pods": len(pods), "containers": len(ctrs)}).Info("registered with NRI")
	p.check(pods, ctrs)
	return nil, nil
}

// check reports the running containers whose profile escaped the policy:
// created while no plugin was registered (without required_plugins), or
// under another policy. NRI can't change a running container's seccomp
// filter (nor can anyone): they are logged, one warning each, and counted,
// for the operator to restart them.
func (p *Plugin) check(pods []*api.PodSandbox, ctrs []*api.Container) {
	cfg, err := p.Load()
	if err != nil {
		p.Log.WithError(err).Warn("running containers not checked")
		return
	}
	byID := map[string]*api.PodSandbox{}
	for _, pod := range pods {
		byID[pod.GetId()] = pod
	}
	escaped := 0
	for _, ctr := range ctrs {
		if ctr.GetState() != api.ContainerState_CONTAINER_RUNNING {
			continue
		}
		pod := byID[ctr.GetPodSandboxId()]
		fields := logrus.Fields{"id": ctr.GetId(), "namespace": pod.GetNamespace(), "pod": pod.GetName(), "container": ctr.GetName()}
		data, err := Spec(pod, ctr)
		if err != nil {
			p.Log.WithFields(fields).WithError(err).Warn("running container not checked")
			continue
		}
		res, ok, err := inject.Follows(cfg, data, ctr.GetId(), Source(pod, ctr))
		if err == nil && !ok && askedProfile(ctr) {
			// Privileged, its profile the plugin's, resolved for all
			// capabilities (Caps): running, it shows that profile, not
			// the none containerd set.
			if data, err := spec(pod, ctr, allCaps()); err == nil {
				if _, priv, err := inject.Follows(cfg, data, ctr.GetId(), Source(pod, ctr)); err == nil {
					ok = priv
				}
			}
		}
		switch {
		case err != nil:
			escaped++
			p.Log.WithFields(fields).WithError(err).Warn("running container escaped the policy: restart it")
		case !ok:
			escaped++
			p.Log.WithFields(fields).WithFields(logrus.Fields{"rule": res.Rule, "profile": res.Profile}).Warn("running container escaped the policy: its seccomp profile is not the rule's; restart it")
		}
	}
	p.Metrics.escaped.Set(float64(escaped))
}

// CreateContainer is stub.CreateContainerInterface's.
func (p *Plugin) CreateContainer(_ context.Context, pod *api.PodSandbox, ctr *api.Container) (*api.ContainerAdjustment, []*api.ContainerUpdate, error) {
	fields := logrus.Fields{"component": "seccomp-agent nri", "id": ctr.GetId(), "namespace": pod.GetNamespace(),
		"pod": pod.GetName(), "container": ctr.GetName(), "cri_profile": criProfile(ctr)}
	_, caps := Caps(ctr)
	cfg, err := p.Load()
	if err == nil {
		var adj *api.ContainerAdjustment
		var res *policy.Result
		if adj, res, err = Adjust(cfg, pod, ctr, inject.Reach(cfg)); err == nil {
			p.record(cfg, fields, res, caps)
			return adj, nil, nil
		}
	}
	// containerd shows this to the CRI client, after its own prefix.
	err = fmt.Errorf("seccomp-shim: %w", err)
	p.Metrics.count("refused", "")
	p.Log.WithFields(fields).Error(err)
	if cfg != nil {
		if lerr := logfile.Node(cfg.Log, logrus.ErrorLevel, err.Error(), fields); lerr != nil {
			p.Log.WithError(lerr).Warn("log.file")
		}
	}
	return nil, nil, err
}

// record logs and counts the decision as the shim does.
func (p *Plugin) record(cfg *policy.Config, fields logrus.Fields, res *policy.Result, caps string) {
	maps.Copy(fields, logfile.Result(res))
	fields["requested"] = res.Requested
	switch res.Action {
	case policy.ActionInjected, policy.ActionReplaced, policy.ActionTightened:
		fields["capabilities"] = caps
	}
	if err := logfile.Node(cfg.Log, logrus.InfoLevel, "seccomp profile "+res.Action, fields); err != nil {
		p.Log.WithError(err).Warn("log.file")
	}
	p.Metrics.count(res.Action, res.Rule)
	if res.Degraded() {
		if err := logfile.CountDegraded(filepath.Dir(cfg.Audit.Socket)); err != nil {
			p.Log.WithError(err).Warn("counting a degraded create")
		}
	}
}

// criProfile is the CRI seccomp profile kind containerd passed, for the log.
func criProfile(ctr *api.Container) string {
	sp := ctr.GetLinux().GetSeccompProfile()
	if sp == nil {
		return "none"
	}
	kind := strings.ToLower(sp.GetProfileType().String())
	if ref := sp.GetLocalhostRef(); ref != "" {
		kind += " " + ref
	}
	return kind
}

// Run registers p with NRI at socket and serves it until ctx ends. A lost
// connection (containerd restarting) or a failed one (not up yet) is tried
// again every retry (every 60 retries where the runtime is not Supported),
// with a fresh stub: one that failed to register keeps its dead connection.
// Of failures in a row, the first is a warning and the rest debug lines.
func (p *Plugin) Run(ctx context.Context, socket string, retry time.Duration) {
	failures := 0
	for ctx.Err() == nil {
		s, err := stub.New(p, stub.WithPluginName(Name), stub.WithPluginIdx(Index), stub.WithSocketPath(socket),
			stub.WithLogger(stubLog{p.Log}), stub.WithOnClose(func() { p.Metrics.connected.Set(0) }))
		if err == nil {
			err = s.Run(ctx)
			p.Metrics.connected.Set(0)
		}
		if ctx.Err() != nil {
			return
		}
		if p.registered.Swap(false) {
			failures = 0
		}
		wait := retry
		if errors.Is(err, ErrRuntime) {
			// Only a new runtime, restarted, changes the answer.
			wait = 60 * retry
		}
		log := p.Log.WithError(err).WithField("nri_socket", socket)
		if failures++; failures == 1 {
			log.Warnf("NRI connection lost or refused; connecting again every %v", wait)
		} else {
			log.Debug("NRI connection refused")
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
}

// stubLog is NRI's logger on the agent's: the stub's own chatter (created,
// started, stopping: each retry) at debug level.
type stubLog struct{ l *logrus.Logger }

func (s stubLog) Debugf(ctx context.Context, f string, a ...any) {
	s.l.WithContext(ctx).Debugf(f, a...)
}
func (s stubLog) Infof(ctx context.Context, f string, a ...any) { s.l.WithContext(ctx).Debugf(f, a...) }
func (s stubLog) Warnf(ctx context.Context, f string, a ...any) { s.l.WithContext(ctx).Warnf(f, a...) }
func (s stubLog) Errorf(ctx context.Context, f string, a ...any) {
	s.l.WithContext(ctx).Errorf(f, a...)
}

// Metrics counts the plugin's decisions, for the agent's registry.
type Metrics struct {
	creates   *prometheus.CounterVec
	connected prometheus.Gauge
	escaped   prometheus.Gauge
}

// NewMetrics returns the plugin's metrics: register Collectors() in the
// agent's registry.
func NewMetrics() *Metrics {
	return &Metrics{
		creates: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "seccomp_agent_nri_creates_total",
			Help: "Containers the NRI plugin decided on, by action (injected, kept, replaced, tightened, unconfined, refused) and rule."}, []string{"action", "rule"}),
		connected: prometheus.NewGauge(prometheus.GaugeOpts{Name: "seccomp_agent_nri_connected",
			Help: "1 while the NRI plugin is registered with the runtime."}),
		escaped: prometheus.NewGauge(prometheus.GaugeOpts{Name: "seccomp_agent_nri_escaped_containers",
			Help: "Running containers whose seccomp profile is not what the policy gives them, found when the plugin last registered: created while it was away, or under another policy."}),
	}
}

// Collectors are what the agent registers.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.creates, m.connected, m.escaped}
}

func (m *Metrics) count(action, rule string) { m.creates.WithLabelValues(action, rule).Inc() }
