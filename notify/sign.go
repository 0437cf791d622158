package notify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Standard Webhooks v1 signing (media-and-notify notes s6.4): the signed
// content is "<webhook-id>.<webhook-timestamp>.<body>", the signature
// base64(HMAC-SHA256(key, content)), sent as "v1,<sig>"; several
// space-separated entries during a secret rotation.

// Header names of the Standard Webhooks envelope.
const (
	HeaderWebhookID        = "webhook-id"
	HeaderWebhookTimestamp = "webhook-timestamp"
	HeaderWebhookSignature = "webhook-signature"
)

const secretPrefix = "whsec_"

// Errors of signature verification.
var (
	ErrSignatureMissing   = errors.New("notify: webhook signature headers missing")
	ErrSignatureTimestamp = errors.New("notify: webhook timestamp outside tolerance")
	ErrSignatureMismatch  = errors.New("notify: no matching webhook signature")
)

// DecodeSecret turns a "whsec_<base64>" secret into the HMAC key (the
// prefix is optional).
func DecodeSecret(s string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, secretPrefix))
	if err != nil {
		return nil, fmt.Errorf("%w: webhook secret is not base64: %v", ErrConfig, err)
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: empty webhook secret", ErrConfig)
	}
	return b, nil
}

// Sign returns the "v1,<base64>" signature of one message.
func Sign(key []byte, id string, timestamp int64, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write([]byte(strconv.FormatInt(timestamp, 10)))
	m.Write([]byte{'.'})
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// SignatureHeader is the webhook-signature value for every key (rotation).
func SignatureHeader(keys [][]byte, id string, timestamp int64, body []byte) string {
	sigs := make([]string, len(keys))
	for i, k := range keys {
		sigs[i] = Sign(k, id, timestamp, body)
	}
	return strings.Join(sigs, " ")
}

// Verify checks a received webhook as a receiver should: headers present,
// timestamp within tolerance of now (0 means 5 minutes), and one v1
// signature matching one of the keys (compared in constant time).
func Verify(keys [][]byte, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	id, tsS, sigs := h.Get(HeaderWebhookID), h.Get(HeaderWebhookTimestamp), h.Get(HeaderWebhookSignature)
	if id == "" || tsS == "" || sigs == "" {
		return ErrSignatureMissing
	}
	ts, err := strconv.ParseInt(tsS, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %q", ErrSignatureTimestamp, tsS)
	}
	if tolerance <= 0 {
		tolerance = 5 * time.Minute
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return ErrSignatureTimestamp
	}
	for _, k := range keys {
		want := Sign(k, id, ts, body)
		for _, got := range strings.Fields(sigs) {
			if hmac.Equal([]byte(got), []byte(want)) {
				return nil
			}
		}
	}
	return ErrSignatureMismatch
}
