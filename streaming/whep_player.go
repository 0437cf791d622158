package streaming

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed player
var playerFiles embed.FS

// PlayerCSP is the web player's Content-Security-Policy: its own script
// and style only, fetches to its own origin only (the WHEP endpoint and
// the admin API), nothing framed, no forms posted elsewhere.
const PlayerCSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
	"media-src 'self' blob: mediastream:; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// WHEPPlayer serves the web player page at /player/ (and redirects
// /player there). The page plays a message through the WHEP endpoint on
// the same origin, given a grant or CHANNEL URL, or through a grant it
// asks the admin API for.
func WHEPPlayer() http.Handler {
	sub, _ := fs.Sub(playerFiles, "player")
	files := http.StripPrefix("/player/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if r.URL.Path == "/player" {
			http.Redirect(w, r, "/player/", http.StatusMovedPermanently)
			return
		}
		h := w.Header()
		h.Set("Content-Security-Policy", PlayerCSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
}
