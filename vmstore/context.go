package vmstore

import "strings"

// Context is an RFC 3458 message context.
type Context string

// RFC 3458 s3 message contexts (and the OMTP extras we count apart).
const (
	ContextUnknown    Context = ""
	ContextVoice      Context = "voice-message"
	ContextVideo      Context = "video-message"
	ContextFax        Context = "fax-message"
	ContextPager      Context = "pager-message"
	ContextMultimedia Context = "multimedia-message"
	ContextText       Context = "text-message"
	ContextNone       Context = "none"
)

// Contexts lists the contexts that MWI counts, in RFC 3842 s5.2 order.
var Contexts = []Context{ContextVoice, ContextFax, ContextPager, ContextMultimedia, ContextText, ContextNone, ContextVideo}

func contextIndex(c Context) int {
	for i, x := range Contexts {
		if x == c {
			return i
		}
	}
	return len(Contexts) - 2 // "none": anything unclassified
}

// ParseContext accepts RFC 3458 names and the short forms people type
// (voice, fax, video, multimedia, text, pager). Unknown values give
// ContextUnknown.
func ParseContext(s string) Context {
	s = strings.ToLower(strings.TrimSpace(s))
	s = strings.TrimSuffix(s, "-message")
	switch s {
	case "voice":
		return ContextVoice
	case "video":
		return ContextVideo
	case "fax":
		return ContextFax
	case "pager":
		return ContextPager
	case "multimedia":
		return ContextMultimedia
	case "text":
		return ContextText
	case "none":
		return ContextNone
	}
	return ContextUnknown
}

// MWILabel is the RFC 3842 s5.2 message-context-class header name of c.
func (c Context) MWILabel() string {
	switch c {
	case ContextVoice:
		return "Voice-Message"
	case ContextFax:
		return "Fax-Message"
	case ContextPager:
		return "Pager-Message"
	case ContextMultimedia:
		return "Multimedia-Message"
	case ContextText:
		return "Text-Message"
	case ContextVideo:
		// RFC 3842 has no video class; RFC 3458 video-message is reported
		// as multimedia by notifiers that need an RFC 3842 label.
		return "Multimedia-Message"
	}
	return "None"
}

// MWICount is new/old × urgent for one context (RFC 3842 s5.2 msg-summary-line:
// "new/old (urgent-new/urgent-old)"; urgent messages are counted in new/old too).
type MWICount struct {
	New       uint32 `json:"new"`
	Old       uint32 `json:"old"`
	UrgentNew uint32 `json:"urgentNew"`
	UrgentOld uint32 `json:"urgentOld"`
}

// MWI is the message-waiting state of an account: per context counts of its
// INBOX (messages flagged \Deleted are not counted).
type MWI struct {
	Counts map[Context]MWICount `json:"counts"`
}

// Waiting reports whether any new message waits (Messages-Waiting: yes).
func (m *MWI) Waiting() bool {
	if m == nil {
		return false
	}
	for _, c := range m.Counts {
		if c.New > 0 {
			return true
		}
	}
	return false
}
