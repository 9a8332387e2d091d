package kube

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/fake"
)

// No API server can run here: client-go's fake metadata client stands in
// for it, with its object tracker applying the merge patches as the server
// would.
func clientWith(labels map[string]string) *fake.FakeMetadataClient {
	scheme := fake.NewTestScheme()
	if err := metav1.AddMetaToScheme(scheme); err != nil {
		panic(err)
	}
	n := &metav1.PartialObjectMetadata{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Node"},
		ObjectMeta: metav1.ObjectMeta{Name: "n1", Labels: labels},
	}
	return fake.NewSimpleMetadataClient(scheme, n)
}

func nodes(cs *fake.FakeMetadataClient) metadata.ResourceInterface {
	return cs.Resource(Nodes).(metadata.ResourceInterface)
}

func labels(t *testing.T, cs *fake.FakeMetadataClient) map[string]string {
	t.Helper()
	n, err := nodes(cs).Get(context.Background(), "n1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return n.Labels
}

func patches(cs *fake.FakeMetadataClient) int {
	n := 0
	for _, a := range cs.Actions() {
		if a.GetVerb() == "patch" {
			n++
		}
	}
	return n
}

func TestSetReady(t *testing.T) {
	ctx := context.Background()
	cs := clientWith(map[string]string{"kubernetes.io/hostname": "n1"})
	if changed, err := SetReady(ctx, nodes(cs), "n1", true); err != nil || !changed {
		t.Fatalf("set: %v %v", changed, err)
	}
	if l := labels(t, cs); l[ReadyLabel] != "true" || l["kubernetes.io/hostname"] != "n1" {
		t.Errorf("labels %v", l)
	}
	// Again: no patch.
	before := patches(cs)
	if changed, err := SetReady(ctx, nodes(cs), "n1", true); err != nil || changed || patches(cs) != before {
		t.Errorf("second set: %v %v, %d patches", changed, err, patches(cs)-before)
	}
	if changed, err := SetReady(ctx, nodes(cs), "n1", false); err != nil || !changed {
		t.Fatalf("remove: %v %v", changed, err)
	}
	if l := labels(t, cs); l[ReadyLabel] != "" || l["kubernetes.io/hostname"] != "n1" {
		t.Errorf("labels after remove %v", l)
	}
	if changed, err := SetReady(ctx, nodes(cs), "n1", false); err != nil || changed {
		t.Errorf("second remove: %v %v", changed, err)
	}
	// A wrong value is corrected.
	cs = clientWith(map[string]string{ReadyLabel: "false"})
	if changed, _ := SetReady(ctx, nodes(cs), "n1", true); !changed || labels(t, cs)[ReadyLabel] != "true" {
		t.Errorf("ready=false not corrected: %v", labels(t, cs))
	}
	if _, err := SetReady(ctx, nodes(cs), "nope", true); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("missing node: %v", err)
	}
}

// The label follows the handler: set while loaded, removed once it is gone
// or the runtime can't be asked.
func TestReadyFollowsHandler(t *testing.T) {
	ctx := context.Background()
	cs := clientWith(nil)
	var out bytes.Buffer
	for _, c := range []struct {
		loaded bool
		err    error
		want   string
	}{
		{false, nil, ""},
		{true, nil, "true"},
		{true, nil, "true"},
		{false, nil, ""},
		{true, nil, "true"},
		{false, errors.New("connection refused"), ""},
	} {
		err := Ready(ctx, nodes(cs), "n1", func(context.Context) (bool, error) { return c.loaded, c.err }, 0, &out)
		if !errors.Is(err, c.err) {
			t.Errorf("loaded %v, %v: returned %v", c.loaded, c.err, err)
		}
		if got := labels(t, cs)[ReadyLabel]; got != c.want {
			t.Errorf("loaded %v, %v: label %q, want %q", c.loaded, c.err, got, c.want)
		}
	}
	if !strings.Contains(out.String(), "label "+ReadyLabel+" removed") || !strings.Contains(out.String(), "connection refused") {
		t.Errorf("output:\n%s", out.String())
	}
}

// TestReadyRemovesOnStop: a watching ready that is stopped removes the
// label, whatever its last check set: the preStop hook's removal can race a
// check under way (review).
func TestReadyRemovesOnStop(t *testing.T) {
	cs := clientWith(nil)
	ctx, cancel := context.WithCancel(context.Background())
	var out bytes.Buffer
	done := make(chan error)
	checked := make(chan struct{}, 1)
	go func() {
		done <- Ready(ctx, nodes(cs), "n1", func(context.Context) (bool, error) {
			select {
			case checked <- struct{}{}:
			default:
			}
			return true, nil
		}, time.Hour, &out)
	}()
	<-checked
	for labels(t, cs)[ReadyLabel] != "true" {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := labels(t, cs)[ReadyLabel]; got != "" {
		t.Errorf("label %q after stop, want none:\n%s", got, out.String())
	}
}
