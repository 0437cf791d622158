package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/lemonvox/lemonvox/transcode"
)

const convertUse = "convert IN OUT [--codec pcmu|pcma|g722|g726|gsm|l16] [--rate HZ] [--container wav|au|raw] [--in-codec C] [--in-rate HZ]"

// inputFlags are the flags that describe a headerless input file.
type inputFlags struct {
	codec *string
	rate  *int
}

func addInputFlags(f *flags) inputFlags {
	return inputFlags{
		codec: f.fs.String("in-codec", "", "codec of a headerless input (default by extension)"),
		rate:  f.fs.Int("in-rate", 0, "sample rate of a headerless input in Hz (default by extension)"),
	}
}

func (in inputFlags) parse() (transcode.Codec, int, error) {
	var c transcode.Codec
	if *in.codec != "" {
		var err error
		if c, err = transcode.ParseCodec(*in.codec); err != nil {
			return 0, 0, usageError{"--in-codec: " + err.Error()}
		}
	}
	if r := *in.rate; r != 0 && (r < transcode.MinRate || r > transcode.MaxRate) {
		return 0, 0, usageError{fmt.Sprintf("--in-rate %d: from %d to %d Hz", r, transcode.MinRate, transcode.MaxRate)}
	}
	return c, *in.rate, nil
}

func (c *cli) convert(args []string) error {
	f := c.newFlags("convert")
	codec := f.fs.String("codec", "", "target codec: pcmu, pcma, g722, g726, gsm, l16")
	rate := f.fs.Int("rate", 0, "target sample rate in Hz")
	container := f.fs.String("container", "", "target container: wav, au, raw")
	inf := addInputFlags(f)
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if err := want(pos, 2, convertUse); err != nil {
		return err
	}
	if *rate != 0 && (*rate < transcode.MinRate || *rate > transcode.MaxRate) {
		return usageError{fmt.Sprintf("--rate %d: from %d to %d Hz", *rate, transcode.MinRate, transcode.MaxRate)}
	}
	opts := transcode.ConvertOptions{Rate: *rate}
	if opts.InCodec, opts.InRate, err = inf.parse(); err != nil {
		return err
	}
	if *codec != "" {
		if opts.Codec, err = transcode.ParseCodec(*codec); err != nil {
			return usageError{err.Error()}
		}
	}
	if *container != "" {
		if opts.Container, err = transcode.ParseContainer(*container); err != nil {
			return usageError{err.Error()}
		}
	}
	if err := transcode.ConvertFile(pos[0], pos[1], opts); err != nil {
		return err
	}
	info, err := transcode.ProbeFileAs(pos[1], transcode.Unknown, 0)
	if err != nil {
		info, err = transcode.ProbeFileAs(pos[1], opts.Codec, opts.Rate)
	}
	if err != nil {
		fmt.Fprintf(c.stdout, "wrote %s\n", pos[1])
		return nil
	}
	fmt.Fprintf(c.stdout, "wrote %s: %s\n", pos[1], info)
	return nil
}

func (c *cli) probe(args []string) error {
	f := c.newFlags("probe")
	inf := addInputFlags(f)
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if err := want(pos, 1, "probe FILE [--in-codec C] [--in-rate HZ]"); err != nil {
		return err
	}
	ic, ir, err := inf.parse()
	if err != nil {
		return err
	}
	info, err := transcode.ProbeFileAs(pos[0], ic, ir)
	if err != nil {
		return err
	}
	fmt.Fprintln(c.stdout, info)
	return nil
}

func (c *cli) formats(args []string) error {
	pos, err := c.newFlags("formats").parse(args)
	if err != nil {
		return err
	}
	if err := want(pos, 0, "formats"); err != nil {
		return err
	}
	sup := transcode.Supported()
	for _, cont := range []transcode.Container{transcode.WAV, transcode.AU, transcode.Raw} {
		var names []string
		for _, codec := range sup[cont] {
			names = append(names, codec.String())
		}
		fmt.Fprintf(c.stdout, "%-4s %s\n", cont, strings.Join(names, " "))
	}
	var ro []string
	for _, codec := range transcode.ReadOnly() {
		ro = append(ro, codec.String())
	}
	fmt.Fprintf(c.stdout, "read only (WAV, AU): %s\n", strings.Join(ro, " "))
	fmt.Fprintln(c.stdout, "rates: any from 8000 to 48000 Hz (G.722 16000, G.726 and GSM 8000); mono/stereo down-mix")
	fmt.Fprintf(c.stdout, "extensions: %s (raw files: --in-codec/--in-rate when the extension does not say)\n", transcode.OutputExtensions)
	return nil
}

// sample writes a synthesized voice message as a WAV file, for trying the
// appliance without a recording at hand.
func (c *cli) sample(args []string) error {
	f := c.newFlags("sample")
	secs := f.fs.Int("seconds", 4, "length in seconds (1 to 600)")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if err := want(pos, 1, "sample FILE [--seconds N]"); err != nil {
		return err
	}
	if *secs < 1 || *secs > 600 {
		return usageError{fmt.Sprintf("--seconds %d: from 1 to 600", *secs)}
	}
	wav, d, err := transcode.SampleVoice(time.Duration(*secs) * time.Second)
	if err != nil {
		return err
	}
	if err := os.WriteFile(pos[0], wav, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "wrote %s: wav, pcmu, 8000 Hz, 1 channel(s), %.3f s\n", pos[0], d.Seconds())
	return nil
}
