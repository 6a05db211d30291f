package function

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestEnv_ResolvedNamespaceFallsBackToThePodsOwn(t *testing.T) {
	saFile := filepath.Join(t.TempDir(), "namespace")
	if err := os.WriteFile(saFile, []byte("from-service-account\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		env     Env
		saFile  string
		want    string
		wantErr string
	}{
		{"GITPULSE_NAMESPACE first", Env{Namespace: "ns", PodNamespace: "pod-ns"}, saFile, "ns", ""},
		{"then POD_NAMESPACE", Env{PodNamespace: "pod-ns"}, saFile, "pod-ns", ""},
		{"then the service account's", Env{}, saFile, "from-service-account", ""},
		{"outside a pod: an error, never default", Env{}, filepath.Join(t.TempDir(), "none"), "", "GITPULSE_NAMESPACE is not set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := serviceAccountNamespace
			serviceAccountNamespace = tt.saFile
			t.Cleanup(func() { serviceAccountNamespace = old })
			got, err := tt.env.ResolvedNamespace()
			if got != tt.want || (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("ResolvedNamespace() = %q, %v; want %q, error %q", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestStart_BuildsClientsAsTheFunctionAsks(t *testing.T) {
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:6443"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`), 0o600); err != nil {
		t.Fatal(err)
	}
	var env Env
	rt, err := Start(context.Background(), map[string]string{EnvKubeconfig: kubeconfig, EnvNamespace: "ns", EnvInstance: "i-1"},
		&env, Options{Name: "gitpulse-test", DefaultMemoryLimit: 64 << 20, Timeout: 15 * time.Second, QPS: 1000, Burst: 2000, DisableCompression: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Stop()
	rc := rt.RESTConfig
	if rc.Host != "https://127.0.0.1:6443" || rc.QPS != 1000 || rc.Burst != 2000 || rc.Timeout != 15*time.Second || rc.UserAgent != "gitpulse-test" || !rc.DisableCompression {
		t.Errorf("rest config host %s QPS %v burst %d timeout %s agent %q compression off %v: want the kubeconfig's host and the options",
			rc.Host, rc.QPS, rc.Burst, rc.Timeout, rc.UserAgent, rc.DisableCompression)
	}
	if rt.Namespace != "ns" || rt.Instance != "i-1" || rt.MemoryLimit == nil {
		t.Errorf("runtime %+v: want namespace, instance and a memory limit", rt)
	}
}
