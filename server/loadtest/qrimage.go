package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/qrlogin/qrlogin/shared/api"
	"github.com/qrlogin/qrlogin/shared/client"
)

// pngSignature opens every PNG file.
var pngSignature = []byte("\x89PNG\r\n\x1a\n")

// maxImage bounds how much of an image answer is read.
const maxImage = 1 << 20

// qr has every worker create one session, then fetch its QR image back
// to back for the window.
func (r *runner) qr(ctx context.Context, res *Result) error {
	sessions := make([]*api.CreateSessionResponse, r.cfg.Clients)
	for w := range sessions {
		s, err := r.create(ctx, r.desktop(w))
		if err != nil {
			return fmt.Errorf("create the sessions to draw: %w", err)
		}
		sessions[w] = s
	}
	if need := r.cfg.Duration + r.cfg.Drain; time.Duration(sessions[0].ExpiresIn)*time.Second < need {
		return fmt.Errorf("sessions live %ds, but this run may need %v: start the server with --session-ttl of at least %v (up to 1h)",
			sessions[0].ExpiresIn, need, need.Round(time.Minute)+time.Minute)
	}
	lat := make([][]time.Duration, r.cfg.Clients)
	err := r.window(ctx, res, func(stop, ctx context.Context) {
		var wg sync.WaitGroup
		for w := range r.cfg.Clients {
			wg.Go(func() {
				base := r.desktop(w).BaseURL
				for stop.Err() == nil && r.claim() {
					t0 := time.Now()
					if err := r.fetchQR(ctx, base, sessions[w].ID); err != nil {
						r.fail(ctx, "qr.png", err)
						pause(stop, errorBackoff)
						continue
					}
					lat[w] = append(lat[w], time.Since(t0))
				}
			})
		}
		wg.Wait()
	})
	if err != nil {
		return err
	}
	all := merge(lat)
	res.Ops = int64(len(all))
	res.Latency = Summarize(all)
	return nil
}

// fetchQR gets session id's QR image from the server at base (not from
// the answer's qr_url, whose public URL may name another address than
// the one under test) and checks that it is a PNG. An error answer is
// returned as a *client.Error, so it is counted by its code.
func (r *runner) fetchQR(ctx context.Context, base, id string) error {
	rctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, base+"/api/v1/login-sessions/"+url.PathEscape(id)+"/qr.png", nil)
	if err != nil {
		return fmt.Errorf("build qr.png request: %w", err)
	}
	req.Header.Set("User-Agent", "qrlogin-load")
	resp, err := r.hc.Do(req)
	if err != nil {
		return fmt.Errorf("GET qr.png: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxImage))
	if err != nil {
		return fmt.Errorf("read qr.png: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		ce := &client.Error{StatusCode: resp.StatusCode, Code: "http_" + strconv.Itoa(resp.StatusCode)}
		var e api.Error
		if json.Unmarshal(body, &e) == nil && e.Code != "" {
			ce.Code, ce.Message = e.Code, e.Message
		}
		return ce
	}
	if ct := resp.Header.Get("Content-Type"); ct != "image/png" || !bytes.HasPrefix(body, pngSignature) {
		return fmt.Errorf("qr.png: answer of type %q and %d bytes is not a PNG", ct, len(body))
	}
	return nil
}
