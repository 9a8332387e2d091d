// Package kube is what seccomp-install does through Kubernetes: the node's
// ready label, kept in step with the runtime handler the CRI runtime has
// loaded. It is apart from package install, which seccomp-shim links for
// its check, so that client-go and gRPC stay out of the shim.
package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/signal"
	"slices"
	"time"

	"github.com/seccomp-shim/seccomp-shim/internal/cliapp"
	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	cri "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ReadyLabel marks a node whose container runtime has the seccomp-shim
// handler loaded; the RuntimeClass schedules its pods only there.
const ReadyLabel = "seccomp-shim.io/ready"

// handler is the runtime handler install registers, the RuntimeClass's.
const handler = "seccomp-shim"

// HandlerLoaded asks the CRI runtime at socket (containerd, CRI-O) whether
// it has the runtime handler name loaded, which is what a pod of the
// RuntimeClass needs: the files install writes count only once the runtime
// has read them. CRI runtimes list their handlers (runtime_handlers, CRI
// v1.30 and later); containerd 1.6/1.7 only show them in the verbose
// status's config.
func HandlerLoaded(ctx context.Context, socket, name string) (bool, error) {
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return false, fmt.Errorf("CRI %s: %w", socket, err)
	}
	defer conn.Close()
	st, err := cri.NewRuntimeServiceClient(conn).Status(ctx, &cri.StatusRequest{Verbose: true})
	if err != nil {
		return false, fmt.Errorf("CRI %s: status: %w", socket, err)
	}
	if slices.ContainsFunc(st.RuntimeHandlers, func(h *cri.RuntimeHandler) bool { return h.Name == name }) {
		return true, nil
	}
	var cfg struct {
		Containerd struct {
			Runtimes map[string]json.RawMessage `json:"runtimes"`
		} `json:"containerd"`
	}
	if c, ok := st.Info["config"]; ok && json.Unmarshal([]byte(c), &cfg) == nil {
		_, ok := cfg.Containerd.Runtimes[name]
		return ok, nil
	}
	return false, nil
}

// SetReady adds the ready label to node, or removes it, through the API
// server; it changes nothing if the node already is as asked. It returns
// whether it changed the node.
func SetReady(ctx context.Context, nodes metadata.ResourceInterface, node string, ready bool) (bool, error) {
	n, err := nodes.Get(ctx, node, metav1.GetOptions{})
	if err != nil {
		return false, fmt.Errorf("node %s: %w", node, err)
	}
	if _, has := n.Labels[ReadyLabel]; has == ready && (!ready || n.Labels[ReadyLabel] == "true") {
		return false, nil
	}
	value := any(nil) // null removes the label in a merge patch
	if ready {
		value = "true"
	}
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"labels": map[string]any{ReadyLabel: value}}})
	if _, err := nodes.Patch(ctx, node, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return false, fmt.Errorf("node %s: label %s: %w", node, ReadyLabel, err)
	}
	return true, nil
}

// Ready keeps the node's ready label in step with loaded (HandlerLoaded):
// set while the handler is loaded, removed when it is gone, so the
// scheduler sends pods of the RuntimeClass only where they can start. With
// watch 0 it does it once. An error asking the runtime removes the label:
// a node that can't say it has the handler is not ready.
func Ready(ctx context.Context, nodes metadata.ResourceInterface, node string, loaded func(context.Context) (bool, error), watch time.Duration, out io.Writer) error {
	last := ""
	for {
		ok, err := loaded(ctx)
		msg := fmt.Sprintf("%s: runtime handler %s loaded: %v", node, handler, ok)
		if err != nil {
			msg = fmt.Sprintf("%s: runtime handler %s: %v", node, handler, err)
		}
		changed, perr := SetReady(ctx, nodes, node, ok && err == nil)
		if changed {
			msg += fmt.Sprintf(" (label %s %s)", ReadyLabel, map[bool]string{true: "set", false: "removed"}[ok && err == nil])
		}
		if perr != nil {
			msg += "; " + perr.Error()
		}
		if msg != last || changed {
			fmt.Fprintln(out, msg)
			last = msg
		}
		if watch <= 0 {
			if perr != nil {
				return perr
			}
			return err
		}
		select {
		case <-ctx.Done():
			// Stopped (the pod's SIGTERM): the agent beside us is going
			// away, and a check already under way when the preStop hook
			// removed the label may have set it again.
			stop, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			if _, err := SetReady(stop, nodes, node, false); err != nil {
				return err
			}
			fmt.Fprintf(out, "%s: stopping: label %s removed\n", node, ReadyLabel)
			return nil
		case <-time.After(watch):
		}
	}
}

// InCluster is the API's nodes, as the pod's service account sees them.
// A label is metadata, and client-go's metadata client is all it takes: a
// typed clientset registers every API group and makes seccomp-install,
// which goes on every node, about 55 MB instead of 20.
func InCluster() (metadata.ResourceInterface, error) {
	cfg, err := rest.InClusterConfig()
	if err != nil {
		return nil, fmt.Errorf("the API server (run in a pod with a service account): %w", err)
	}
	c, err := metadata.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return c.Resource(Nodes), nil
}

// Nodes is the resource the label is on.
var Nodes = schema.GroupVersionResource{Version: "v1", Resource: "nodes"}

// Command is seccomp-install's ready command.
func Command(stdout io.Writer) *cli.Command {
	return &cli.Command{
		Name:  "ready",
		Usage: "set the node's " + ReadyLabel + " label while the CRI runtime has the " + handler + " handler loaded, and remove it when it doesn't (or with --remove); from a pod, with its service account",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "node", EnvVars: []string{"NODE_NAME"}, Usage: "the node's name (the downward API's spec.nodeName)"},
			&cli.StringFlag{Name: "cri", Value: "/run/containerd/containerd.sock", Usage: "the CRI runtime's socket"},
			&cli.DurationFlag{Name: "watch", Usage: "check again this often, until stopped"},
			&cli.BoolFlag{Name: "remove", Usage: "remove the label and stop (a preStop hook: the handler's agent is going away)"},
		},
		Action: func(c *cli.Context) error {
			if err := cliapp.NoArgs(c); err != nil {
				return err
			}
			node := c.String("node")
			if node == "" {
				return cliapp.Usage(c, "ready needs --node (or NODE_NAME)")
			}
			nodes, err := InCluster()
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(c.Context, unix.SIGTERM, unix.SIGINT)
			defer stop()
			if c.Bool("remove") {
				if _, err := SetReady(ctx, nodes, node, false); err != nil {
					return err
				}
				fmt.Fprintf(stdout, "%s: label %s removed\n", node, ReadyLabel)
				return nil
			}
			socket := c.String("cri")
			loaded := func(ctx context.Context) (bool, error) {
				ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				defer cancel()
				return HandlerLoaded(ctx, socket, handler)
			}
			return Ready(ctx, nodes, node, loaded, c.Duration("watch"), stdout)
		},
	}
}
