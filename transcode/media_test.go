package transcode

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"testing"
)

func TestConvertMediaAudio(t *testing.T) {
	pcm := speechLike(8000, 8000)
	var wav bytes.Buffer
	WriteWAV(&wav, pcm, 8000, PCMA)
	// To audio/basic: headerless µ-law, one byte a sample.
	res, err := ConvertMedia(MediaRequest{From: "audio/wav", To: "audio/basic"}, bytes.NewReader(wav.Bytes()))
	if err != nil || res.Type != "audio/basic" || len(res.Data) != 8000 {
		t.Fatalf("basic: %v %d", err, len(res.Data))
	}
	// To L16 16 kHz WAV.
	res, err = ConvertMedia(MediaRequest{From: "audio/wav", To: "audio/wav", Params: map[string]string{ParamCodec: "l16", ParamSampleRate: "16000"}}, bytes.NewReader(wav.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	info, out := decodeAll(t, res.Data)
	if info.Codec != L16 || info.Rate != 16000 || len(out) != 16000 {
		t.Fatalf("l16: %v, %d samples", info, len(out))
	}
	// Default (NIL) target.
	res, err = ConvertMedia(MediaRequest{From: "audio/basic"}, bytes.NewReader(bytes.Repeat([]byte{0xff}, 800)))
	if err != nil || res.Type != "audio/wav" {
		t.Fatalf("default: %v %+v", err, res)
	}
	// Bad and unknown parameters.
	var pe *ParamError
	_, err = ConvertMedia(MediaRequest{From: "audio/wav", To: "audio/basic", Params: map[string]string{"x-frob": "1", ParamSampleRate: "8000"}}, bytes.NewReader(wav.Bytes()))
	if !errors.As(err, &pe) || len(pe.Names) != 1 || pe.Names[0] != "x-frob" {
		t.Fatalf("unknown param: %v", err)
	}
	_, err = ConvertMedia(MediaRequest{From: "audio/wav", To: "audio/basic", Params: map[string]string{ParamSampleRate: "16000"}}, bytes.NewReader(wav.Bytes()))
	if !errors.As(err, &pe) {
		t.Fatalf("basic at 16 kHz: %v", err)
	}
	_, err = ConvertMedia(MediaRequest{From: "audio/wav", To: "video/mp4"}, bytes.NewReader(wav.Bytes()))
	if !errors.Is(err, ErrNoConversion) {
		t.Fatalf("no conversion: %v", err)
	}
}

func TestConvertMediaImage(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 640, 480))
	for y := 0; y < 480; y++ {
		for x := 0; x < 640; x++ {
			img.Set(x, y, color.RGBA{uint8(x), uint8(y), 128, 255})
		}
	}
	var src bytes.Buffer
	jpeg.Encode(&src, img, nil)
	res, err := ConvertMedia(MediaRequest{From: "image/jpeg", To: "image/jpeg", Params: map[string]string{ParamPixX: "176", ParamPixY: "144"}}, bytes.NewReader(src.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	cfg, _, err := image.DecodeConfig(bytes.NewReader(res.Data))
	if err != nil || cfg.Width != 176 || cfg.Height != 132 {
		t.Fatalf("scaled to %dx%d (%v), want 176x132", cfg.Width, cfg.Height, err)
	}
	res, err = ConvertMedia(MediaRequest{From: "image/jpeg", To: "image/png", Params: map[string]string{ParamPixX: "100"}}, bytes.NewReader(src.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if cfg, _, _ := image.DecodeConfig(bytes.NewReader(res.Data)); cfg.Width != 100 || cfg.Height != 75 {
		t.Fatalf("png %dx%d", cfg.Width, cfg.Height)
	}
	if _, err := ConvertMedia(MediaRequest{From: "image/jpeg", To: "image/png"}, bytes.NewReader([]byte("not a picture"))); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("corrupt image: %v", err)
	}
	if w, h := ScaleToFit(100, 50, 176, 144); w != 100 || h != 50 {
		t.Fatalf("small pictures are not enlarged: %dx%d", w, h)
	}
}

func TestConvertMediaText(t *testing.T) {
	latin := []byte("Gr\xfc\xdfe aus K\xf6ln")
	res, err := ConvertMedia(MediaRequest{From: "text/plain", FromParams: map[string]string{"charset": "iso-8859-1"}, To: "text/plain",
		Params: map[string]string{ParamCharset: "utf-8"}}, bytes.NewReader(latin))
	if err != nil || string(res.Data) != "Grüße aus Köln" {
		t.Fatalf("%v %q", err, res.Data)
	}
	var pe *ParamError
	_, err = ConvertMedia(MediaRequest{From: "text/plain", To: "text/plain", Params: map[string]string{ParamCharset: "iso-8859-1"}}, bytes.NewReader([]byte("snow ☃")))
	if !errors.As(err, &pe) {
		t.Fatalf("unrepresentable: %v", err)
	}
	res, err = ConvertMedia(MediaRequest{From: "text/plain", To: "text/plain", Params: map[string]string{ParamCharset: "iso-8859-1", ParamReplacement: "?"}}, bytes.NewReader([]byte("snow ☃")))
	if err != nil || string(res.Data) != "snow ?" {
		t.Fatalf("replacement: %v %q", err, res.Data)
	}
}

// audio/32kadpcm converted out and back in keeps the signal (nibble order
// agrees between the raw encoder and the raw decoder).
func TestConvertMedia32kADPCMRoundTrip(t *testing.T) {
	pcm := speechLike(8000, 8000)
	var wav bytes.Buffer
	WriteWAV(&wav, pcm, 8000, L16)
	adpcm, err := ConvertMedia(MediaRequest{From: "audio/wav", To: "audio/32kadpcm"}, bytes.NewReader(wav.Bytes()))
	if err != nil || len(adpcm.Data) != 4000 {
		t.Fatalf("%v %d", err, len(adpcm.Data))
	}
	back, err := ConvertMedia(MediaRequest{From: "audio/32kadpcm", To: "audio/wav", Params: map[string]string{ParamCodec: "l16"}}, bytes.NewReader(adpcm.Data))
	if err != nil {
		t.Fatal(err)
	}
	_, out := decodeAll(t, back.Data)
	if q := segSNR(pcm, out, 8000, 0); q < 20 {
		t.Fatalf("32kadpcm round trip %.1f dB", q)
	}
}
