package fakegithub

// GitHub Apps: installations and their access tokens.

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

type app struct {
	id  int64
	key *rsa.PublicKey
}

// AddAppInstallation registers a GitHub App (its id and public key) and one
// installation of it.
func (s *Server) AddAppInstallation(appID, installationID int64, key *rsa.PublicKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.apps[installationID] = app{id: appID, key: key}
}

// InstallationTokens is how many installation tokens were issued.
func (s *Server) InstallationTokens() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.issued)
}

// installationToken checks the App's JWT and issues an installation token.
func (s *Server) installationToken(w http.ResponseWriter, r *http.Request) {
	id, _ := strconv.ParseInt(r.PathValue("installation"), 10, 64)
	s.mu.Lock()
	a, ok := s.apps[id]
	s.mu.Unlock()
	if !ok {
		notFound(w)
		return
	}
	jwt, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || verifyJWT(jwt, a, s.opts.Now()) != nil {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"message": "A JSON web token could not be decoded",
			"documentation_url": "https://docs.github.com/rest"})
		return
	}
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	tok := "ghs_" + hex.EncodeToString(b)
	s.mu.Lock()
	s.issued[tok] = true
	s.mu.Unlock()
	writeJSON(w, http.StatusCreated, map[string]any{"token": tok, "expires_at": s.opts.Now().Add(time.Hour).UTC().Format(time.RFC3339),
		"permissions": map[string]string{"repository_hooks": "write", "pull_requests": "read", "contents": "read"}})
}

// verifyJWT checks an RS256 JWT's signature with the App's key, that it
// was issued by the App, and that it has not expired.
func verifyJWT(token string, a app, now time.Time) error {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return fmt.Errorf("not a JWT")
	}
	var header struct {
		Alg string `json:"alg"`
	}
	var claims struct {
		Iss string `json:"iss"`
		Exp int64  `json:"exp"`
	}
	hb, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	cb, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	sig, err3 := base64.RawURLEncoding.DecodeString(parts[2])
	if err := errors.Join(err1, err2, err3, json.Unmarshal(hb, &header), json.Unmarshal(cb, &claims)); err != nil {
		return err
	}
	if header.Alg != "RS256" {
		return fmt.Errorf("alg %s", header.Alg)
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(a.key, crypto.SHA256, sum[:], sig); err != nil {
		return err
	}
	if claims.Iss != strconv.FormatInt(a.id, 10) || time.Unix(claims.Exp, 0).Before(now) || time.Unix(claims.Exp, 0).After(now.Add(11*time.Minute)) {
		return fmt.Errorf("claims %+v", claims)
	}
	return nil
}
