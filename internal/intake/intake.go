// Package intake receives raw GitHub webhooks on one machine in direct mode
// (GITPULSE_EVENTING=off: no Broker, and so not the real GitHubSource receive
// adapter either, which internal/localrun runs otherwise): it does what the
// adapter does in a cluster —
// parse the delivery with the adapter's own library and turn it into the
// adapter's CloudEvent (internal/ghsource) — and hands the CloudEvent to the
// recorder over HTTP, in binary mode as the Broker delivers it.
//
// What it refuses, it refuses as the adapter does (eventing-github
// pkg/common/handler.go): 404 for an event type outside the adapter's
// ValidEvents, 400 for any other parse error (wrong method, no
// X-GitHub-Event, no X-GitHub-Delivery, empty or broken JSON, a payload that
// does not fit the adapter's struct), and, stricter than the adapter, a body
// that is not UTF-8. Unlike the adapter, which checks only
// the SHA-1 X-Hub-Signature, it requires X-Hub-Signature-256: 401 when the
// header is missing or malformed (checked before the body is read), 403 when
// it does not match; and it caps the body (413).
//
// Once parsed, toward a Broker (Options.ToBroker): 202 "accepted" when it
// acknowledged, else 400 with the reason, as the adapter answers. Straight to
// the recorder: 202 when it acknowledged (2xx); the recorder's own 4xx when it
// refused the event for good; 502 when it failed transiently (5xx) or could not
// be reached, so a sender can retry as a Broker would.
package intake

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/google/go-github/v60/github"
	"golang.org/x/net/http/httpguts"

	"github.com/liatrio/gitpulse/internal/ghsource"
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
	// ToBroker says Target is a Broker's ingress, as the adapter's sink is:
	// then every answer but 2xx, and every failure to send, is answered 400
	// with the reason, exactly as the adapter answers GitHub (the Broker,
	// not GitHub, retries deliveries it accepted). Without it the intake
	// stands in for the Broker too and answers 502 for the recorder's
	// transient failures, so that a sender can retry.
	ToBroker bool
	// OwnerAndRepository is what a GitHubSource's spec.ownerAndRepository
	// would be ("owner/repo" or "org"); the CloudEvent source is
	// https://github.com/<it>. Empty: each payload's own repository, as if
	// every repository had its GitHubSource.
	OwnerAndRepository string
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
	eventType, delivery := r.Header.Get(github.EventTypeHeader), r.Header.Get(github.DeliveryIDHeader)
	log := h.opts.Logger.With("delivery", delivery, "event", eventType)
	refuse := func(code int, reason string) {
		log.Warn("webhook refused", "code", code, "reason", reason)
		http.Error(w, reason, code)
	}
	// The signature header is checked before the body is read, so that an
	// unsigned client cannot make the intake read (and hold) 25 MiB.
	signature := r.Header.Get(github.SHA256SignatureHeader)
	if signature == "" {
		refuse(http.StatusUnauthorized, "missing "+github.SHA256SignatureHeader+" signature")
		return
	}
	if !wellFormedSignature(signature) {
		refuse(http.StatusUnauthorized, github.SHA256SignatureHeader+" is not sha256=<64 hex digits>")
		return
	}
	if r.Method != http.MethodPost {
		refuse(http.StatusBadRequest, "webhooks are delivered with POST")
		return
	}
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/json" {
		// The adapter fails such a body as unparsable JSON (400); say why.
		refuse(http.StatusBadRequest, fmt.Sprintf("content type %q: configure the webhook with application/json", r.Header.Get("Content-Type")))
		return
	}
	if r.ContentLength > h.opts.MaxBodyBytes {
		refuse(http.StatusRequestEntityTooLarge, fmt.Sprintf("body of %d bytes exceeds the limit of %d", r.ContentLength, h.opts.MaxBodyBytes))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.opts.MaxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			refuse(http.StatusRequestEntityTooLarge, fmt.Sprintf("body exceeds the limit of %d bytes", h.opts.MaxBodyBytes))
			return
		}
		refuse(http.StatusBadRequest, "reading the body: "+err.Error())
		return
	}
	if err := github.ValidateSignature(signature, body, h.opts.Secret); err != nil {
		refuse(http.StatusForbidden, "signature does not match the payload")
		return
	}
	if !utf8.Valid(body) {
		// GitHub sends UTF-8 only; the adapter's encoding/json would quietly
		// turn invalid bytes into U+FFFD and record names GitHub never had.
		refuse(http.StatusBadRequest, "payload is not valid UTF-8")
		return
	}
	ev, err := ghsource.FromWebhook(h.opts.OwnerAndRepository, eventType, delivery, body)
	switch {
	case errors.Is(err, ghsource.ErrEventNotFound):
		refuse(http.StatusNotFound, fmt.Sprintf("event type %q is not one the GitHubSource adapter accepts", eventType))
		return
	case err != nil:
		refuse(http.StatusBadRequest, "error processing request: "+err.Error())
		return
	}
	code, text, err := h.forward(r.Context(), ev)
	var unsendable *unsendableError
	if h.opts.ToBroker && (err != nil || code < 200 || code > 299) {
		// handler.go: `if !cloudevents.IsACK(result)` -> 400 and the error.
		reason := fmt.Sprintf("the Broker did not acknowledge the event: answered %d", code)
		if err != nil {
			reason = "the Broker did not acknowledge the event: " + err.Error()
		}
		log.Error("event not acknowledged", "code", code, "err", err, "reason", text)
		http.Error(w, reason, http.StatusBadRequest)
		return
	}
	switch {
	case errors.As(err, &unsendable):
		// The adapter's CloudEvents client fails the same way (sdk-go puts
		// extensions in ce- headers unencoded) and answers GitHub 400.
		refuse(http.StatusBadRequest, unsendable.Error())
	case err != nil:
		log.Error("recorder unreachable", "err", err)
		http.Error(w, "recorder unreachable", http.StatusBadGateway)
	case code >= 200 && code < 300:
		log.Debug("webhook forwarded", "code", code)
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, "accepted")
	case code >= 400 && code < 500 && code != http.StatusTooManyRequests:
		refuse(code, "recorder refused the event: "+text)
	default:
		log.Warn("recorder failed transiently", "code", code, "reason", text)
		http.Error(w, fmt.Sprintf("recorder answered %d", code), http.StatusBadGateway)
	}
}

// unsendableError: the CloudEvent cannot be sent in binary mode because an
// attribute (e.g. the ref extension of a branch name with a line feed) is not
// a valid HTTP header value.
type unsendableError struct{ header string }

func (e *unsendableError) Error() string {
	return fmt.Sprintf("the event cannot be sent: %s would not be a valid HTTP header value", e.header)
}

// wellFormedSignature reports whether v is "sha256=" and 64 hex digits.
func wellFormedSignature(v string) bool {
	hexDigits, ok := strings.CutPrefix(v, "sha256=")
	if !ok || len(hexDigits) != 64 {
		return false
	}
	_, err := hex.DecodeString(hexDigits)
	return err == nil
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
	for name, values := range req.Header {
		for _, v := range values {
			if !httpguts.ValidHeaderFieldValue(v) {
				return 0, "", &unsendableError{header: name}
			}
		}
	}
	resp, err := h.opts.Client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	text, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, string(bytes.TrimSpace(text)), nil
}
