package e2e

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// Series the shipped dashboard and alerts use that the agent doesn't serve:
// Prometheus' own, and kube-state-metrics' (docs/kubernetes.md#monitoring).
var externalMetrics = []string{"up", "kube_pod_container_status_running", "kube_pod_info", "kube_pod_runtimeclass_name_info"}

// TestMonitoringNamesLiveMetrics: every metric that deploy/monitoring's
// Grafana dashboard and Prometheus alerts query is one a live agent serves
// (after a denial, so the labelled families exist), or one of the few
// external series named above.
func TestMonitoringNamesLiveMetrics(t *testing.T) {
	exprs := monitoringExprs(t)
	addr := metricsAgent(t, "monitoring-1")

	served := map[string]bool{}
	name := regexp.MustCompile(`(?m)^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]`)
	text := scrape(t, addr)
	for _, m := range name.FindAllStringSubmatch(text, -1) {
		served[m[1]] = true
	}
	used := map[string]bool{}
	for where, e := range exprs {
		for _, n := range metricNames(e) {
			used[n] = true
			if !served[n] && !slices.Contains(externalMetrics, n) {
				t.Errorf("%s queries %s, which the agent does not serve", where, n)
			}
		}
	}
	for _, n := range []string{"seccomp_agent_containers", "seccomp_agent_handoff_failures_total", "seccomp_agent_audit_dropped_total", "up"} {
		if !used[n] {
			t.Errorf("nothing in deploy/monitoring uses %s", n)
		}
	}
}

// monitoringExprs returns each PromQL expression of the dashboard and the
// alert rules, by where it is.
func monitoringExprs(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	data, err := os.ReadFile("../../deploy/monitoring/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Name       string `json:"name"`
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("grafana-dashboard.json: %v", err)
	}
	for _, p := range dash.Panels {
		for i, tg := range p.Targets {
			out["dashboard panel "+p.Title+" target "+string(rune('A'+i))] = tg.Expr
		}
	}
	for _, v := range dash.Templating.List {
		if q, ok := strings.CutPrefix(v.Definition, "label_values("); ok {
			out["dashboard variable "+v.Name] = strings.TrimSuffix(q[:strings.LastIndex(q, ",")], ")")
		}
	}
	data, err = os.ReadFile("../../deploy/monitoring/alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Name  string `json:"name"`
			Rules []struct {
				Alert       string            `json:"alert"`
				Expr        string            `json:"expr"`
				For         string            `json:"for"`
				Labels      map[string]string `json:"labels"`
				Annotations map[string]string `json:"annotations"`
			} `json:"rules"`
		} `json:"groups"`
	}
	if err := yaml.UnmarshalStrict(data, &rules); err != nil {
		t.Fatalf("alerts.yaml: %v", err)
	}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			out["alert "+r.Alert] = r.Expr
		}
	}
	if len(out) == 0 {
		t.Fatal("no expressions in deploy/monitoring")
	}
	return out
}

// metricNames picks the metric names out of a PromQL expression: what is
// left once strings, label matchers, ranges, the label lists of by, on,
// without, ignoring and group_*, functions and keywords are taken out.
func metricNames(expr string) []string {
	for _, re := range []string{`"(?:[^"\\]|\\.)*"`, `\{[^}]*\}`, `\[[^\]]*\]`, `\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`, `\$\w+`} {
		expr = regexp.MustCompile(re).ReplaceAllString(expr, " ")
	}
	keywords := []string{"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset"}
	var names []string
	for _, m := range regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*\s*\(?`).FindAllString(expr, -1) {
		if strings.HasSuffix(m, "(") {
			continue // a function
		}
		if n := strings.TrimSpace(m); !slices.Contains(keywords, n) && !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	return names
}
