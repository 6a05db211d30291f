package controlplane

// The control plane's credentials: the admin token the API server accepts
// (tokens.csv), the service-account signing key, and the client
// configurations and kubeconfigs built from them.

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"os"
	"path/filepath"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// writeCredentials makes (or, after a Restart, reuses) dir's admin token and
// service-account key and returns the token.
func writeCredentials(dir string) (string, error) {
	var token string
	tokenPath := filepath.Join(dir, "tokens.csv")
	if b, err := os.ReadFile(tokenPath); err == nil && len(b) > 32 {
		token = string(b[:32])
	} else {
		buf := make([]byte, 16)
		if _, err := rand.Read(buf); err != nil {
			return "", err
		}
		token = hex.EncodeToString(buf)
		line := token + ",gitpulse-admin,gitpulse-admin,system:masters\n"
		if err := os.WriteFile(tokenPath, []byte(line), 0o600); err != nil {
			return "", err
		}
	}
	keyPath := filepath.Join(dir, "sa.key")
	if _, err := os.Stat(keyPath); err != nil {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return "", err
		}
		pemKey := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
		if err := os.WriteFile(keyPath, pemKey, 0o600); err != nil {
			return "", err
		}
	}
	return token, nil
}

// Config is an admin (system:masters) client configuration. Each call returns
// a new copy the caller may change.
func (c *ControlPlane) Config() *rest.Config {
	return &rest.Config{
		Host:            c.Host(),
		BearerToken:     c.token,
		TLSClientConfig: rest.TLSClientConfig{CAData: c.caData},
		QPS:             -1, // no client-side throttling against a private server
	}
}

// Kubeconfig renders an admin kubeconfig for kubectl and for processes
// started with KUBECONFIG.
func (c *ControlPlane) Kubeconfig() ([]byte, error) {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["gitpulse"] = &clientcmdapi.Cluster{Server: c.Host(), CertificateAuthorityData: c.caData}
	cfg.AuthInfos["gitpulse-admin"] = &clientcmdapi.AuthInfo{Token: c.token}
	cfg.Contexts["gitpulse"] = &clientcmdapi.Context{Cluster: "gitpulse", AuthInfo: "gitpulse-admin", Namespace: "default"}
	cfg.CurrentContext = "gitpulse"
	return clientcmd.Write(*cfg)
}

// WriteKubeconfig writes Kubeconfig to path.
func (c *ControlPlane) WriteKubeconfig(path string) error {
	b, err := c.Kubeconfig()
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}
