package main

import (
	"bytes"
	"time"

	"github.com/lemonvox/lemonvox/transcode"
	"github.com/lemonvox/lemonvox/vmstore"
)

// createDemo creates the demo subscriber with one sample voice message.
func createDemo(st *vmstore.Store) error {
	if _, err := st.CreateAccount(vmstore.AccountSpec{Name: "demo", Password: "demo", PIN: "1234",
		Options: vmstore.AccountOptions{DisplayName: "Demo Subscriber"}}); err != nil {
		return err
	}
	wav, dur, err := transcode.SampleVoice(4 * time.Second)
	if err != nil {
		return err
	}
	_, err = st.Deposit(vmstore.DepositReq{User: "demo", Service: "demo", Body: vmstore.VoiceMessage{
		From:      "+15550100@lemonvox.invalid",
		To:        "demo@lemonvox.invalid",
		Subject:   "Welcome to Lemonvox",
		MediaType: "audio/wav",
		Duration:  dur,
		Media:     bytes.NewReader(wav),
	}.Compose()})
	return err
}
