package vmstore

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"mime"
	"strings"
	"time"
)

// VoiceMessage describes a media file to wrap into a VPIM v2 style message
// (RFC 3801): multipart/voice-message with the media as a base64 part,
// Message-Context (RFC 3458) and Content-Duration (RFC 3803) headers, in the
// shape visual voicemail clients read (top-level Content-Duration, base64
// audio as a direct child).
type VoiceMessage struct {
	From      string // caller, e.g. "+15551234567@vm.example.net" or "Alice <a@b>"
	To        string
	Subject   string // default "Voice message from <From>"
	Date      time.Time
	Context   Context // default voice-message
	Urgent    bool
	MediaType string // e.g. audio/wav
	FileName  string // default by media type
	Duration  time.Duration
	Media     io.Reader
}

// Compose streams the message; the media is read lazily, so large files
// are never held whole in memory.
func (v VoiceMessage) Compose() io.Reader {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(v.write(pw)) }()
	return pr
}

func (v VoiceMessage) write(w io.Writer) error {
	if v.Context == ContextUnknown {
		v.Context = ContextVoice
	}
	if v.Date.IsZero() {
		v.Date = time.Now()
	}
	if v.MediaType == "" {
		v.MediaType = "application/octet-stream"
	}
	from := v.From
	if from == "" {
		from = "unknown"
	}
	if !strings.Contains(from, "@") && !strings.Contains(from, "<") {
		from += "@localhost"
	}
	if v.Subject == "" {
		who := v.From
		if who == "" {
			who = "unknown caller"
		}
		v.Subject = "Voice message from " + who
		if v.Context != ContextVoice {
			v.Subject = strings.TrimSuffix(strings.ToUpper(string(v.Context[:1]))+string(v.Context[1:]), "-message") + " message from " + who
		}
	}
	if v.FileName == "" {
		ext := ".bin"
		if exts, _ := mime.ExtensionsByType(v.MediaType); len(exts) > 0 {
			ext = exts[0]
		}
		switch v.MediaType {
		case "audio/wav", "audio/x-wav", "audio/wave":
			ext = ".wav"
		case "audio/basic":
			ext = ".au"
		}
		v.FileName = "message" + ext
	}
	var rb [12]byte
	_, _ = rand.Read(rb[:])
	boundary := "lemonvox-" + hex.EncodeToString(rb[:])
	bw := bufio.NewWriterSize(w, 32<<10)
	h := func(k, val string) { fmt.Fprintf(bw, "%s: %s\r\n", k, val) }
	h("Date", v.Date.Format(time.RFC1123Z))
	h("From", mime.QEncoding.Encode("utf-8", from))
	if v.To != "" {
		h("To", v.To)
	}
	h("Subject", mime.QEncoding.Encode("utf-8", v.Subject))
	h("Message-ID", "<"+hex.EncodeToString(rb[:])+"@lemonvox>")
	h("MIME-Version", "1.0 (Voice 2.0)")
	h("Message-Context", string(v.Context))
	if v.Duration > 0 {
		h("Content-Duration", fmt.Sprint(int64(v.Duration.Round(time.Second)/time.Second)))
	}
	if v.Urgent {
		h("Importance", "high")
		h("Priority", "urgent")
	}
	h("Content-Type", fmt.Sprintf("multipart/voice-message; boundary=%q; version=2.0", boundary))
	bw.WriteString("\r\n--" + boundary + "\r\n")
	h("Content-Type", v.MediaType)
	h("Content-Transfer-Encoding", "base64")
	h("Content-Disposition", fmt.Sprintf("inline; voice=Voice-Message; filename=%q", v.FileName))
	if v.Duration > 0 {
		h("Content-Duration", fmt.Sprint(int64(v.Duration.Round(time.Second)/time.Second)))
	}
	bw.WriteString("\r\n")
	// base64 in 76-character lines (RFC 2045 s6.8).
	buf := make([]byte, 57*256)
	line := make([]byte, 78)
	for {
		n, err := io.ReadFull(v.Media, buf)
		for i := 0; i < n; i += 57 {
			j := min(i+57, n)
			k := base64.StdEncoding.EncodedLen(j - i)
			base64.StdEncoding.Encode(line, buf[i:j])
			line[k], line[k+1] = '\r', '\n'
			if _, werr := bw.Write(line[:k+2]); werr != nil {
				return werr
			}
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return err
		}
	}
	bw.WriteString("--" + boundary + "--\r\n")
	return bw.Flush()
}
