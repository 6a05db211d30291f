package function

import (
	"log/slog"
	"strings"
	"time"

	"github.com/rs/zerolog"
)

// knative.dev/func-go, which serves the functions, logs with zerolog's global
// logger on stderr ({"level":"debug","time":<unix seconds>,"message":…}, at
// debug by default), beside the functions' own slog JSON. MatchFuncGoLogs
// makes its lines slog's: the keys time, level and msg, RFC 3339 times with
// nanoseconds and upper-case levels, so one log pipeline reads both. func-go
// sets zerolog's time format in its package init, which runs after ours, so
// this runs from each function's New (the scaffolding calls New before
// func-go's Start logs anything) and again from Start with the configured
// level.
func MatchFuncGoLogs(level slog.Level) {
	zerolog.TimestampFieldName = slog.TimeKey
	zerolog.LevelFieldName = slog.LevelKey
	zerolog.MessageFieldName = slog.MessageKey
	zerolog.ErrorFieldName = "error"
	zerolog.TimeFieldFormat = time.RFC3339Nano
	zerolog.LevelFieldMarshalFunc = func(l zerolog.Level) string { return strings.ToUpper(l.String()) }
	zerolog.SetGlobalLevel(zerologLevel(level))
}

// zerologLevel is slog's level in zerolog's terms.
func zerologLevel(l slog.Level) zerolog.Level {
	switch {
	case l < slog.LevelInfo:
		return zerolog.DebugLevel
	case l < slog.LevelWarn:
		return zerolog.InfoLevel
	case l < slog.LevelError:
		return zerolog.WarnLevel
	default:
		return zerolog.ErrorLevel
	}
}
