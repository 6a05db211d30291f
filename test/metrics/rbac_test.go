package metrics_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/liatrio/gitpulse/internal/testenv"
	"github.com/liatrio/gitpulse/pkg/metrics"
)

// TestRBAC_FunctionRunsWithItsLeastPrivilegeRole runs the Service as the
// gitpulse-metrics ServiceAccount bound to the Role in config/rbac/metrics.yaml
// (impersonated): watching, counting and writing the checkpoint all work with
// exactly those permissions.
func TestRBAC_FunctionRunsWithItsLeastPrivilegeRole(t *testing.T) {
	env := testenv.Get(t)
	ns := env.Namespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	b, err := os.ReadFile(filepath.Join(env.Root, "config", "rbac", "metrics.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var role *rbacv1.Role
	var binding *rbacv1.RoleBinding
	for _, doc := range strings.Split(string(b), "\n---") {
		var meta metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			t.Fatal(err)
		}
		switch meta.Kind {
		case "Role":
			role = &rbacv1.Role{}
			if err := yaml.Unmarshal([]byte(doc), role); err != nil {
				t.Fatal(err)
			}
		case "RoleBinding":
			binding = &rbacv1.RoleBinding{}
			if err := yaml.Unmarshal([]byte(doc), binding); err != nil {
				t.Fatal(err)
			}
		}
	}
	if role == nil || binding == nil {
		t.Fatal("config/rbac/metrics.yaml has no Role or RoleBinding")
	}
	role.Namespace, binding.Namespace = ns, ns
	for i := range binding.Subjects {
		binding.Subjects[i].Namespace = ns
	}
	if _, err := env.Kube.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Kube.RbacV1().RoleBindings(ns).Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	cfg := rest.CopyConfig(env.Config())
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + ns + ":gitpulse-metrics"}
	all := prEvents("rbac", 6)
	mustCreateEvents(t, env.Kube, ns, all[:3]...)
	svc := startService(t, cfg, metrics.Config{Namespace: ns})
	mustCreateEvents(t, env.Kube, ns, all[3:]...)
	waitExact(t, svc, ns, 6)
	stop(t, svc) // the final checkpoint write: update, with the Role's resourceName
	var total uint64
	for _, v := range checkpoint(t, env.Kube, ns).Counts {
		total += v
	}
	if total != 6 {
		t.Fatalf("checkpoint counts %d Events, want 6", total)
	}
	_, f := scrape(t, handlerOf(svc))
	if n := counterSum(f, "gitpulse_metrics_checkpoint_writes_total", map[string]string{"result": "error"}); n != 0 {
		t.Fatalf("%v checkpoint writes failed under the Role", n)
	}
}
