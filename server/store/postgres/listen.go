package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"time"

	"github.com/jackc/pgx/v5"
)

// Listener timing. Variables so tests can shorten them.
var (
	// listenBackoffMin and listenBackoffMax bound the wait between
	// reconnection attempts; it doubles after each failure.
	listenBackoffMin = 50 * time.Millisecond
	listenBackoffMax = 5 * time.Second
	// listenHeartbeat is how long the connection may be silent before it
	// is pinged, so a connection that died without a word (a network
	// partition, a failover) is noticed in seconds, not at TCP keepalive's
	// pace.
	listenHeartbeat = 20 * time.Second
	listenPingLimit = 5 * time.Second
)

// ListenerAppName is the application_name of the listening connection
// (shown in pg_stat_activity): the pool's own name (default
// "qrlogin-server") with this suffix.
const ListenerAppName = " (listen)"

// Listen reports session changes made by any server sharing the database,
// this one included: it holds a dedicated connection that LISTENs on
// Channel and calls changed(id) for every notification, until ctx is done
// (then it returns nil). A server wires changed to its in-process
// notifier's Publish.
//
// Notifications sent while no connection listens are lost, so after every
// (re)connection, once LISTEN is in place, Listen calls changed for each id
// that waiting returns (the sessions this server holds long-polls on): the
// woken long-polls re-read their session, and no change is missed. A lost
// connection is re-dialled with exponential backoff (50 ms up to 5 s) and
// logged.
func (db *DB) Listen(ctx context.Context, log *slog.Logger, changed func(id string), waiting func() []string) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	backoff := listenBackoffMin
	lost := false
	for {
		listened, err := db.listenOnce(ctx, log, lost, changed, waiting)
		if ctx.Err() != nil {
			return nil
		}
		if listened {
			backoff = listenBackoffMin
		}
		if !lost || listened {
			log.Warn("session notifications from other servers: connection lost, reconnecting", "err", err)
		}
		lost = true
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		backoff = min(2*backoff, listenBackoffMax)
	}
}

// listenOnce connects, listens and passes notifications on until the
// connection fails; listened reports whether LISTEN took effect.
func (db *DB) listenOnce(ctx context.Context, log *slog.Logger, lost bool, changed func(string), waiting func() []string) (listened bool, err error) {
	cfg := db.pool.Config().ConnConfig
	cfg.RuntimeParams = maps.Clone(cfg.RuntimeParams)
	cfg.RuntimeParams["application_name"] += ListenerAppName
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return false, fmt.Errorf("connect: %w", err)
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		_ = conn.Close(closeCtx)
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+Channel); err != nil {
		return false, fmt.Errorf("listen: %w", err)
	}
	if lost {
		log.Info("session notifications from other servers: reconnected")
	}
	for _, id := range waiting() {
		changed(id)
	}
	for {
		waitCtx, cancel := context.WithTimeout(ctx, listenHeartbeat)
		n, err := conn.WaitForNotification(waitCtx)
		quiet := errors.Is(waitCtx.Err(), context.DeadlineExceeded)
		cancel()
		switch {
		case err == nil:
			changed(n.Payload)
			continue
		case ctx.Err() != nil:
			return true, ctx.Err()
		case !quiet:
			return true, fmt.Errorf("wait for notification: %w", err)
		}
		// Silent for a while: make sure the connection still works. A
		// notification that arrives meanwhile is buffered by pgx.
		pingCtx, cancel := context.WithTimeout(ctx, listenPingLimit)
		err = conn.Ping(pingCtx)
		cancel()
		if err != nil {
			return true, fmt.Errorf("ping: %w", err)
		}
	}
}
