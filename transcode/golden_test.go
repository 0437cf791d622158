package transcode

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"
)

// Bit-exactness guards: the codes and PCM our codecs produce for a fixed
// input must not change when the code is optimised. (Interoperability
// with ffmpeg is tested separately; these hashes pin our own arithmetic.)
func TestCodecGolden(t *testing.T) {
	in16 := speechLike(16000, 16000)
	in8 := speechLike(8000, 8000)
	h := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:8]) }
	hp := func(p []int16) string { return h(pcmBytes(p)) }
	g722 := newG722().encode(nil, in16)
	g726 := newG726().encode(nil, in8)
	gsm := newGSMEncoder(false).encode(nil, in8)
	got := map[string]string{
		"g722 codes": h(g722),
		"g722 pcm":   hp(newG722().decode(nil, g722)),
		"g726 codes": h(g726),
		"g726 pcm":   hp(newG726().decode(nil, g726)),
		"gsm codes":  h(gsm),
		"gsm pcm":    hp(newGSMDecoder(false).decode(nil, gsm)),
	}
	want := map[string]string{
		"g722 codes": "eafe72f234de714c",
		"g722 pcm":   "26e6fe22121b72b5",
		"g726 codes": "3b065018c7b2690e",
		"g726 pcm":   "92cc276c794be06f",
		"gsm codes":  "b1fffb300d7f5099",
		"gsm pcm":    "8e3df9349bebf9eb",
	}
	for k, v := range got {
		if want[k] != v {
			t.Errorf("%s: %s, want %s", k, v, want[k])
		}
	}
}
