package main

import (
	"fmt"
	"strings"

	"github.com/lemonvox/lemonvox/transcode"
)

func (c *cli) convert(args []string) error {
	f := c.newFlags("convert")
	codec := f.fs.String("codec", "", "target codec: pcmu, pcma, g722, g726, gsm, l16")
	rate := f.fs.Int("rate", 0, "target sample rate in Hz")
	container := f.fs.String("container", "", "target container: wav, au, raw")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if err := want(pos, 2, "convert IN OUT [--codec pcmu|pcma|g722|g726|gsm|l16] [--rate HZ] [--container wav|au|raw]"); err != nil {
		return err
	}
	opts := transcode.ConvertOptions{Rate: *rate}
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
	info, err := transcode.ProbeFile(pos[1])
	if err != nil {
		fmt.Fprintf(c.stdout, "wrote %s\n", pos[1])
		return nil
	}
	fmt.Fprintf(c.stdout, "wrote %s: %s\n", pos[1], info)
	return nil
}

func (c *cli) probe(args []string) error {
	pos, err := c.newFlags("probe").parse(args)
	if err != nil {
		return err
	}
	if err := want(pos, 1, "probe FILE"); err != nil {
		return err
	}
	info, err := transcode.ProbeFile(pos[0])
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
	fmt.Fprintln(c.stdout, "rates: any from 8000 to 48000 Hz (G.722 16000, G.726 and GSM 8000); mono/stereo down-mix")
	return nil
}
