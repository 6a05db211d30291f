package function

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"

	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// An error says that the request itself is at fault — it can never succeed
// as sent, so it is answered 4xx and never retried — by behaviour, as
// net.Error says Timeout, so that the packages returning such errors need
// not import this one:
type (
	// invalid: the request can never be handled (400).
	invalid interface{ Invalid() bool }
	// tooLarge: the request is over a size limit (413).
	tooLarge interface{ TooLarge() bool }
)

// StatusCode is the HTTP answer for a CloudEvent handler's error: 400 for
// an event that can never be handled, 413 for one over the size limit; 422
// when the API server refuses what was written as invalid and 413 when it
// (or etcd) refuses it as too large, as retrying cannot help; 503 for
// transient API server trouble (unreachable, timeouts, throttling, conflicts
// that outlasted the retries); 500 for anything else (RBAC, a missing
// namespace: the Broker's retries give an operator time to fix it).
func StatusCode(err error) int {
	var (
		netErr net.Error
		inv    invalid
		big    tooLarge
	)
	switch {
	case err == nil:
		return http.StatusOK
	case errors.As(err, &inv) && inv.Invalid():
		return http.StatusBadRequest
	case errors.As(err, &big) && big.TooLarge():
		return http.StatusRequestEntityTooLarge
	case apierrors.IsRequestEntityTooLargeError(err), isEtcdTooLarge(err):
		return http.StatusRequestEntityTooLarge
	case apierrors.IsInvalid(err), apierrors.IsBadRequest(err):
		return http.StatusUnprocessableEntity
	case apierrors.IsConflict(err), apierrors.IsAlreadyExists(err),
		apierrors.IsServerTimeout(err), apierrors.IsTimeout(err),
		apierrors.IsTooManyRequests(err), apierrors.IsServiceUnavailable(err),
		errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// senderFault reports whether err is about the request itself, so that
// its text may be sent back.
func senderFault(err error) bool {
	var (
		inv invalid
		big tooLarge
	)
	return (errors.As(err, &inv) && inv.Invalid()) || (errors.As(err, &big) && big.TooLarge())
}

// isEtcdTooLarge: etcd refused the write as over its request size limit
// (--max-request-bytes, 1.5 MiB by default), which the API server passes
// on as an internal error "etcdserver: request is too large". The same
// object can never be stored, so it is not a transient failure.
func isEtcdTooLarge(err error) bool {
	return apierrors.IsInternalError(err) && strings.Contains(err.Error(), "request is too large")
}

// Answer is what a CloudEvent handler returns to func-go for err: nil for
// nil (2xx), else a cehttp Result with StatusCode(err). Every refusal is
// logged with its code and the whole reason. The answer names the reason
// only when the request is at fault; for a failure on our side (the API
// server, etcd, a bug) it says no more than PublicReason, because the
// reason names the API server, object names and etcd's messages, none of
// which the sender of a webhook may learn.
func Answer(log *slog.Logger, err error) error {
	if err == nil {
		return nil
	}
	code := StatusCode(err)
	level := slog.LevelWarn
	if code >= 500 {
		level = slog.LevelError
	}
	log.Log(context.Background(), level, "delivery refused", "code", code, "reason", err.Error())
	if senderFault(err) {
		return cehttp.NewResult(code, "%w", err)
	}
	return cehttp.NewResult(code, "%s", PublicReason(code))
}

// PublicReason is the whole answer text for a request refused because of
// something on the function's side.
func PublicReason(code int) string {
	switch code {
	case http.StatusRequestEntityTooLarge:
		return "the recorded object would be too large to store; not retryable (details in the recorder's log under this delivery id)"
	case http.StatusUnprocessableEntity:
		return "the recorded object was refused as invalid; not retryable (details in the recorder's log under this delivery id)"
	}
	return http.StatusText(code) + " (details in the recorder's log under this delivery id)"
}
