package admin

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/lemonvox/lemonvox/notify"
)

// Notifications is what the API needs of the notification dispatcher
// (declared here, where it is used; cmd passes the *notify.Dispatcher).
type Notifications interface {
	Status() ([]notify.SinkStatus, error)
	DeadLetters(sink string) ([]notify.DeadLetter, error)
	Replay(ctx context.Context, sink string, seqs []uint64) (int, error)
	DropDeadLetters(sink string, seqs []uint64) (int, error)
	EnableSink(sink string) error
}

func (s *Server) notifyRoutes(api *http.ServeMux) {
	api.HandleFunc("GET /api/v1/notify/sinks", s.withNotify(func(w http.ResponseWriter, r *http.Request, n Notifications) {
		st, err := n.Status()
		if err != nil {
			writeNotifyError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, st)
	}))
	api.HandleFunc("GET /api/v1/notify/sinks/{sink}/dead-letters", s.withNotify(func(w http.ResponseWriter, r *http.Request, n Notifications) {
		dl, err := n.DeadLetters(r.PathValue("sink"))
		if err != nil {
			writeNotifyError(w, err)
			return
		}
		if dl == nil {
			dl = []notify.DeadLetter{}
		}
		writeJSON(w, http.StatusOK, dl)
	}))
	api.HandleFunc("POST /api/v1/notify/sinks/{sink}/replay", s.withNotify(func(w http.ResponseWriter, r *http.Request, n Notifications) {
		seqs, ok := readSeqs(w, r)
		if !ok {
			return
		}
		done, err := n.Replay(r.Context(), r.PathValue("sink"), seqs)
		if err != nil {
			writeNotifyError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]int{"delivered": done})
	}))
	api.HandleFunc("DELETE /api/v1/notify/sinks/{sink}/dead-letters", s.withNotify(func(w http.ResponseWriter, r *http.Request, n Notifications) {
		seqs, ok := readSeqs(w, r)
		if !ok {
			return
		}
		dropped, err := n.DropDeadLetters(r.PathValue("sink"), seqs)
		if err != nil {
			writeNotifyError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]int{"dropped": dropped})
	}))
	api.HandleFunc("POST /api/v1/notify/sinks/{sink}/enable", s.withNotify(func(w http.ResponseWriter, r *http.Request, n Notifications) {
		if err := n.EnableSink(r.PathValue("sink")); err != nil {
			writeNotifyError(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
}

func (s *Server) withNotify(h func(http.ResponseWriter, *http.Request, Notifications)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.Notify == nil {
			writeProblem(w, http.StatusNotFound, "no notification sink is configured")
			return
		}
		h(w, r, s.Notify)
	}
}

// readSeqs reads {"seqs": [...]} (an empty or absent body means all).
func readSeqs(w http.ResponseWriter, r *http.Request) ([]uint64, bool) {
	var req struct {
		Seqs []uint64 `json:"seqs"`
	}
	if r.ContentLength == 0 {
		return nil, true
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
		writeProblem(w, http.StatusBadRequest, "bad JSON body: "+err.Error())
		return nil, false
	}
	return req.Seqs, true
}

func writeNotifyError(w http.ResponseWriter, err error) {
	if errors.Is(err, notify.ErrUnknownSink) {
		writeProblem(w, http.StatusNotFound, err.Error())
		return
	}
	writeError(w, err)
}
