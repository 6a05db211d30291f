package fakegithub

// Repository and organisation webhooks: their deliveries (sent, kept,
// listed with a cursor) and redeliveries.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-github/v60/github"

	"github.com/liatrio/gitpulse/internal/ghwebhook"
)

type hook struct {
	id     int64
	owner  string // the repository's owner, or the organisation
	repo   string // "" for an organisation hook
	url    string
	secret []byte
}

type delivery struct {
	hookID int64
	d      github.HookDelivery
}

// AddRepoHook registers a repository webhook (what a GitHubSource's
// controller does with CreateHook) and returns its id.
func (s *Server) AddRepoHook(repository, target string, secret []byte) int64 {
	owner, repo, _ := strings.Cut(repository, "/")
	return s.addHook(&hook{owner: owner, repo: repo, url: target, secret: secret})
}

// AddOrgHook registers an organisation webhook.
func (s *Server) AddOrgHook(org, target string, secret []byte) int64 {
	return s.addHook(&hook{owner: org, url: target, secret: secret})
}

// SetHookURL points hook id at target (a user editing the webhook's
// payload URL, e.g. after the receiver moved).
func (s *Server) SetHookURL(id int64, target string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if h := s.hooks[id]; h != nil {
		h.url = target
	}
}

func (s *Server) addHook(h *hook) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	h.id = s.nextID
	s.hooks[h.id] = h
	return h.id
}

// Deliver sends d, as GitHub sends an event for repository, to every hook
// of the repository and of its owner, signed with each hook's secret, and
// keeps each attempt. It returns the first hook's status code (0 when the
// hook could not be reached).
func (s *Server) Deliver(ctx context.Context, repository string, d ghwebhook.Delivery) int {
	owner, repo, _ := strings.Cut(repository, "/")
	s.mu.Lock()
	var targets []*hook
	for _, h := range s.hooks {
		if strings.EqualFold(h.owner, owner) && (h.repo == "" || strings.EqualFold(h.repo, repo)) {
			targets = append(targets, h)
		}
	}
	s.mu.Unlock()
	sort.Slice(targets, func(i, j int) bool { return targets[i].id < targets[j].id })
	first := -1
	for _, h := range targets {
		code := s.send(ctx, h, d, false)
		if first < 0 {
			first = code
		}
	}
	return max(first, 0)
}

// send POSTs one attempt and records it.
func (s *Server) send(ctx context.Context, h *hook, d ghwebhook.Delivery, redelivery bool) int {
	start := s.opts.Now()
	req, err := ghwebhook.Request(ctx, h.url, h.secret, d)
	code, status := 0, "failed to connect"
	var respBody []byte
	respHeaders := map[string]string{}
	if err == nil {
		var resp *http.Response
		resp, err = s.opts.Client.Do(req)
		if err == nil {
			respBody, _ = io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			code = resp.StatusCode
			status = "OK"
			if code < 200 || code > 299 {
				status = fmt.Sprintf("Invalid HTTP Response: %d", code)
			}
			for k := range resp.Header {
				respHeaders[k] = resp.Header.Get(k)
			}
		}
	}
	reqHeaders := map[string]string{}
	if req != nil {
		for k := range req.Header {
			reqHeaders[k] = req.Header.Get(k)
		}
	}
	payload := json.RawMessage(bytes.Clone(d.Body))
	rb := json.RawMessage(strconv.Quote(string(respBody)))
	var doc struct {
		Action *string `json:"action"`
		Repo   struct {
			ID *int64 `json:"id"`
		} `json:"repository"`
	}
	_ = json.Unmarshal(d.Body, &doc)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	s.deliveries = append(s.deliveries, &delivery{hookID: h.id, d: github.HookDelivery{
		ID: github.Int64(s.nextID), GUID: github.String(d.ID), DeliveredAt: &github.Timestamp{Time: start.UTC()},
		Redelivery: github.Bool(redelivery), Duration: ptr(s.opts.Now().Sub(start).Seconds()),
		Status: github.String(status), StatusCode: github.Int(code), Event: github.String(d.Event),
		Action: doc.Action, RepositoryID: doc.Repo.ID,
		Request:  &github.HookRequest{Headers: reqHeaders, RawPayload: &payload},
		Response: &github.HookResponse{Headers: respHeaders, RawPayload: &rb},
	}})
	return code
}

// Attempts returns every attempt kept for guid, oldest first.
func (s *Server) Attempts(guid string) []github.HookDelivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []github.HookDelivery
	for _, d := range s.deliveries {
		if d.d.GetGUID() == guid {
			out = append(out, d.d)
		}
	}
	return out
}

// Redeliveries is how many redeliveries of guid were requested.
func (s *Server) Redeliveries(guid string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.redelivers[guid]
}

// TotalRedeliveries is how many redeliveries were requested in all.
func (s *Server) TotalRedeliveries() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.redelivers {
		n += c
	}
	return n
}

// hookOf finds the hook the request's path names, checking that it belongs
// to the repository or organisation the path names.
func (s *Server) hookOf(r *http.Request) *hook {
	id, err := strconv.ParseInt(r.PathValue("hook"), 10, 64)
	if err != nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.hooks[id]
	if h == nil || !strings.EqualFold(h.owner, r.PathValue("owner")) || !strings.EqualFold(h.repo, r.PathValue("repo")) {
		return nil
	}
	return h
}

// listDeliveries answers newest first, per_page at a time; the next page's
// cursor (here: the id to continue below) is in the Link header.
func (s *Server) listDeliveries(w http.ResponseWriter, r *http.Request) {
	h := s.hookOf(r)
	if h == nil {
		notFound(w)
		return
	}
	n := perPage(r)
	below := int64(1 << 62)
	if c := r.URL.Query().Get("cursor"); c != "" {
		v, err := strconv.ParseInt(strings.TrimPrefix(c, "v1_"), 10, 64)
		if err != nil {
			writeJSON(w, http.StatusUnprocessableEntity, map[string]string{"message": "Invalid cursor"})
			return
		}
		below = v
	}
	cutoff := s.opts.Now().Add(-s.opts.Retention)
	s.mu.Lock()
	var page []github.HookDelivery
	more := false
	for i := len(s.deliveries) - 1; i >= 0; i-- {
		d := s.deliveries[i]
		if d.hookID != h.id || d.d.GetID() >= below || d.d.GetDeliveredAt().Before(cutoff) {
			continue
		}
		if len(page) == n {
			more = true
			break
		}
		item := d.d
		item.Request, item.Response = nil, nil // a list item has neither
		page = append(page, item)
	}
	s.mu.Unlock()
	if more {
		next := *r.URL
		q := next.Query()
		q.Set("cursor", "v1_"+strconv.FormatInt(page[len(page)-1].GetID(), 10))
		q.Set("per_page", strconv.Itoa(n))
		next.RawQuery = q.Encode()
		w.Header().Set("Link", fmt.Sprintf(`<%s%s>; rel="next"`, s.srv.URL, next.RequestURI()))
	}
	if page == nil {
		page = []github.HookDelivery{}
	}
	writeJSON(w, http.StatusOK, page)
}

func (s *Server) findDelivery(r *http.Request) (*hook, *delivery) {
	h := s.hookOf(r)
	if h == nil {
		return nil, nil
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return h, nil
	}
	cutoff := s.opts.Now().Add(-s.opts.Retention)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range s.deliveries {
		if d.hookID == h.id && d.d.GetID() == id && !d.d.GetDeliveredAt().Before(cutoff) {
			return h, d
		}
	}
	return h, nil
}

func (s *Server) getDelivery(w http.ResponseWriter, r *http.Request) {
	_, d := s.findDelivery(r)
	if d == nil {
		notFound(w)
		return
	}
	writeJSON(w, http.StatusOK, d.d)
}

// redeliver answers 202 and sends the stored request again, later, as a
// new delivery with the same GUID and event, signed with the hook's
// current secret.
func (s *Server) redeliver(w http.ResponseWriter, r *http.Request) {
	h, d := s.findDelivery(r)
	if d == nil {
		notFound(w)
		return
	}
	s.mu.Lock()
	s.redelivers[d.d.GetGUID()]++
	s.mu.Unlock()
	body := []byte(*d.d.Request.RawPayload)
	again := ghwebhook.Delivery{Event: d.d.GetEvent(), ID: d.d.GetGUID(), Body: body}
	s.inflight.Add(1)
	go func() {
		defer s.inflight.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		s.send(ctx, h, again, true)
	}()
	writeJSON(w, http.StatusAccepted, map[string]any{})
}
