package admin

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/lemonvox/lemonvox/channel"
	"github.com/lemonvox/lemonvox/streaming"
	"github.com/lemonvox/lemonvox/vmstore"
	"github.com/lemonvox/lemonvox/vmstore/message"
)

// whepRoutes mounts the WHEP endpoint and the web player (no admin token:
// a grant authorizes one playback) and the API that issues grants.
func (s *Server) whepRoutes(mux, api *http.ServeMux) {
	if s.WHEP != nil {
		mux.Handle("/whep", s.WHEP)
		mux.Handle("/whep/", s.WHEP)
		mux.Handle("/player", streaming.WHEPPlayer())
		mux.Handle("/player/", streaming.WHEPPlayer())
	}
	if s.Grants != nil {
		api.HandleFunc("POST /api/v1/accounts/{user}/grants", s.issueGrant)
	}
}

// GrantRequest asks for a playback grant of one message part.
type GrantRequest struct {
	Mailbox string `json:"mailbox"` // default INBOX
	UID     uint32 `json:"uid"`
	// Section is the audio part's number; empty: the message's first audio part.
	Section string `json:"section,omitempty"`
	// ExpiresIn in seconds (default 300, at most 3600).
	ExpiresIn int  `json:"expiresIn,omitempty"`
	Resume    bool `json:"resume,omitempty"`
}

// GrantResponse is an issued grant and where it plays.
type GrantResponse struct {
	Grant   string    `json:"grant"`
	Expires time.Time `json:"expires"`
	Section string    `json:"section"`
	WHEP    string    `json:"whep"`   // POST an SDP offer here
	Player  string    `json:"player"` // the web player, grant in the fragment
}

func (s *Server) issueGrant(w http.ResponseWriter, r *http.Request) {
	user := r.PathValue("user")
	var req GrantRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	if req.Mailbox == "" {
		req.Mailbox = "INBOX"
	}
	if req.UID == 0 {
		writeProblem(w, http.StatusBadRequest, "uid is required")
		return
	}
	if req.ExpiresIn <= 0 {
		req.ExpiresIn = 300
	}
	req.ExpiresIn = min(req.ExpiresIn, int(channel.MaxGrantLife/time.Second))
	id, err := s.Store.AccountID(user)
	if err != nil {
		writeError(w, err)
		return
	}
	mb, err := s.Store.Mailbox(user, req.Mailbox)
	if err != nil {
		writeError(w, err)
		return
	}
	m, err := message.Lookup(s.Store, user, req.Mailbox, req.UID)
	if err != nil {
		writeError(w, err)
		return
	}
	defer m.Release()
	if req.Section == "" {
		root, err := m.Structure()
		if err != nil {
			writeError(w, err)
			return
		}
		if req.Section = streaming.FirstAudioSection(root); req.Section == "" {
			writeProblem(w, http.StatusUnprocessableEntity, "the message has no audio part")
			return
		}
	} else if _, err := message.ParseBinary(req.Section); err != nil {
		writeProblem(w, http.StatusBadRequest, "section: "+err.Error())
		return
	}
	tok, g, err := s.Grants.Issue(channel.Grant{AccountID: id, User: user, Mailbox: req.Mailbox, UIDValidity: mb.UIDValidity,
		UID: req.UID, Section: req.Section, Expires: time.Now().Add(time.Duration(req.ExpiresIn) * time.Second), Resume: req.Resume})
	if err != nil {
		if errors.Is(err, channel.ErrGrantRevoked) || errors.Is(err, channel.ErrGrantInvalid) {
			writeError(w, vmstore.ErrNotFound)
			return
		}
		writeError(w, err)
		return
	}
	s.Logger.Info("admin issued a playback grant", "user", user, "mailbox", req.Mailbox, "uid", req.UID,
		"section", req.Section, "grant", channel.HashToken(tok), "expires", g.Expires)
	writeJSON(w, http.StatusCreated, GrantResponse{Grant: tok, Expires: g.Expires, Section: req.Section,
		WHEP: "/whep/" + tok, Player: "/player/#grant=" + url.QueryEscape(tok)})
}

// redactPath keeps grants out of the access log: /whep/<grant> is logged
// as /whep/{grant <hash>} (channel.HashToken names it across logs).
func redactPath(p string) string {
	rest, ok := strings.CutPrefix(p, "/whep/")
	if !ok || rest == "" || strings.HasPrefix(rest, "resource/") {
		return p
	}
	return "/whep/{grant " + channel.HashToken(rest) + "}"
}
