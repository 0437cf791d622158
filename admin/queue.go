package admin

import (
	"net/http"
	"net/url"
	"time"

	"github.com/lemonvox/lemonvox/vmstore"
)

// QueueView is a queued submission as the API lists it: a message held
// for later release (FUTURERELEASE) or waiting for another attempt.
type QueueView struct {
	ID        string    `json:"id"`
	User      string    `json:"user"`
	From      string    `json:"from"`
	Rcpts     []string  `json:"rcpts"`
	Release   time.Time `json:"release"`
	Created   time.Time `json:"created"`
	Hold      bool      `json:"hold"`
	Attempts  int       `json:"attempts,omitempty"`
	LastError string    `json:"lastError,omitempty"`
	// Mailbox and UID locate the message (the sender's Outbox).
	Mailbox string `json:"mailbox,omitempty"`
	UID     uint32 `json:"uid"`
}

// QueueViews lists the queue of user ("" for everyone), leaving out
// entries whose message was expunged (cancelled; the scheduler drops them).
func QueueViews(st *vmstore.Store, user string) ([]QueueView, error) {
	es, err := st.QueueEntries(user)
	if err != nil {
		return nil, err
	}
	out := make([]QueueView, 0, len(es))
	for _, e := range es {
		if _, err := st.Message(e.MailboxID, e.UID); err != nil {
			continue
		}
		v := QueueView{ID: e.ID, User: e.User, From: e.From, Rcpts: e.Rcpts, Release: e.Release, Created: e.Created,
			Hold: e.Hold, Attempts: e.Attempts, LastError: e.LastError, UID: e.UID}
		if mb, err := st.MailboxByID(e.MailboxID); err == nil {
			v.Mailbox = mb.Name
		}
		out = append(out, v)
	}
	return out, nil
}

// GET /api/v1/queue[?user=name]
func (s *Server) listQueue(w http.ResponseWriter, r *http.Request) {
	out, err := QueueViews(s.Store, r.URL.Query().Get("user"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// DELETE /api/v1/queue/{id}: cancels a queued submission (its message
// leaves the Outbox).
func (s *Server) cancelQueued(w http.ResponseWriter, r *http.Request) {
	if err := s.Store.Dequeue(r.PathValue("id")); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}

// Queue lists the submission queue (of user, or everyone for "").
func (c *Client) Queue(user string) ([]QueueView, error) {
	var out []QueueView
	p := "/api/v1/queue"
	if user != "" {
		p += "?user=" + url.QueryEscape(user)
	}
	return out, c.doJSON("GET", p, nil, &out)
}

// CancelQueued cancels a queued submission.
func (c *Client) CancelQueued(id string) error {
	return c.doJSON("DELETE", "/api/v1/queue/"+esc(id), nil, &struct{}{})
}
