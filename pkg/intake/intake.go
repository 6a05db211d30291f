// Package intake receives raw GitHub webhooks on one machine, without
// Knative: it does what the GitHubSource receive adapter does in a cluster —
// check the HMAC signature, turn the delivery into the adapter's CloudEvent —
// and hands the CloudEvent to the recorder over HTTP.
//
// Answers: 202 once the recorder acknowledged (2xx); the recorder's own 4xx
// when it refused the event for good; 502 when the recorder failed
// transiently (5xx) or could not be reached, so a sender can retry as a
// Broker would. The intake itself refuses with 401 (no signature), 403
// (forged signature), 415 (not JSON), 413 (too large), 400 (missing GitHub
// headers) — and forwards nothing in those cases.
package intake

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/google/go-github/v60/github"

	"github.com/liatrio/gitpulse/pkg/githubevent"
)

// Options configure a Handler.
type Options struct {
	// Secret is the webhook secret GitHub signs deliveries with. Required:
	// an intake without one would accept forged deliveries.
	Secret []byte
	// Target is the recorder's URL (CloudEvents over HTTP).
	Target string
	// MaxBodyBytes caps a delivery's body; 0 means 25 MiB, GitHub's own cap.
	MaxBodyBytes int64
	// Client sends the CloudEvents; default a client with a 30 s timeout.
	Client *http.Client
	// Logger; default slog.Default().
	Logger *slog.Logger
}

// Handler is the raw-webhook intake.
type Handler struct {
	opts Options
}

// New checks opts and returns a Handler.
func New(opts Options) (*Handler, error) {
	if len(opts.Secret) == 0 {
		return nil, errors.New("intake: a webhook secret is required")
	}
	if opts.Target == "" {
		return nil, errors.New("intake: a target URL is required")
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 25 << 20
	}
	if opts.Client == nil {
		opts.Client = &http.Client{Timeout: 30 * time.Second}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Handler{opts: opts}, nil
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	eventType, delivery := github.WebHookType(r), github.DeliveryID(r)
	log := h.opts.Logger.With("delivery", delivery, "event", eventType)
	refuse := func(code int, reason string) {
		log.Warn("webhook refused", "code", code, "reason", reason)
		http.Error(w, reason, code)
	}
	if r.Method != http.MethodPost {
		refuse(http.StatusMethodNotAllowed, "webhooks are delivered with POST")
		return
	}
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/json" {
		refuse(http.StatusUnsupportedMediaType, fmt.Sprintf("content type %q: configure the webhook with application/json", r.Header.Get("Content-Type")))
		return
	}
	if r.ContentLength > h.opts.MaxBodyBytes {
		refuse(http.StatusRequestEntityTooLarge, fmt.Sprintf("body of %d bytes exceeds the limit of %d", r.ContentLength, h.opts.MaxBodyBytes))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.opts.MaxBodyBytes))
	if err != nil {
		refuse(http.StatusRequestEntityTooLarge, fmt.Sprintf("body exceeds the limit of %d bytes", h.opts.MaxBodyBytes))
		return
	}
	signature := r.Header.Get(github.SHA256SignatureHeader)
	if signature == "" {
		refuse(http.StatusUnauthorized, "missing "+github.SHA256SignatureHeader+" signature")
		return
	}
	if err := github.ValidateSignature(signature, body, h.opts.Secret); err != nil {
		refuse(http.StatusForbidden, "signature does not match the payload: "+err.Error())
		return
	}
	if eventType == "" || delivery == "" {
		refuse(http.StatusBadRequest, "missing X-GitHub-Event or X-GitHub-Delivery header")
		return
	}
	ev, err := githubevent.NewCloudEvent(eventType, delivery, body)
	if err != nil {
		refuse(http.StatusBadRequest, err.Error())
		return
	}
	code, text, err := h.forward(r.Context(), ev)
	switch {
	case err != nil:
		log.Error("recorder unreachable", "err", err)
		http.Error(w, "recorder unreachable: "+err.Error(), http.StatusBadGateway)
	case code >= 200 && code < 300:
		log.Debug("webhook forwarded", "code", code)
		w.WriteHeader(http.StatusAccepted)
	case code >= 400 && code < 500 && code != http.StatusTooManyRequests:
		refuse(code, "recorder refused the event: "+text)
	default:
		log.Warn("recorder failed transiently", "code", code, "reason", text)
		http.Error(w, fmt.Sprintf("recorder answered %d: %s", code, text), http.StatusBadGateway)
	}
}

// forward POSTs ev to the target in binary mode, as the Broker delivers it.
func (h *Handler) forward(ctx context.Context, ev cloudevents.Event) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.opts.Target, nil)
	if err != nil {
		return 0, "", err
	}
	if err := cehttp.WriteRequest(ctx, binding.ToMessage(&ev), req); err != nil {
		return 0, "", err
	}
	resp, err := h.opts.Client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	text, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, string(bytes.TrimSpace(text)), nil
}
