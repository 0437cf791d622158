package admin

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// Client talks to a running daemon's admin API.
type Client struct {
	BaseURL string
	Token   string
	HTTP    *http.Client
}

// NewClient builds a client from run info (trusting the appliance
// certificate for HTTPS).
func NewClient(ri *RunInfo) (*Client, error) {
	hc := &http.Client{Timeout: 0}
	if ri.CAFile != "" {
		pem, err := os.ReadFile(ri.CAFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		hc.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	}
	return &Client{BaseURL: ri.URL, Token: ri.Token, HTTP: hc}, nil
}

// APIError is a problem answer of the API.
type APIError struct {
	Problem
}

func (e *APIError) Error() string {
	if e.Detail != "" {
		return e.Detail
	}
	return e.Title
}

func (c *Client) do(method, path string, body io.Reader, ctype string, out any) (*http.Response, error) {
	req, err := http.NewRequest(method, c.BaseURL+path, body)
	if err != nil {
		return nil, err
	}
	if sb, ok := body.(*sizedBody); ok {
		req.ContentLength = sb.n
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		var p Problem
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if json.Unmarshal(b, &p) != nil || p.Status == 0 {
			p = Problem{Status: resp.StatusCode, Title: resp.Status, Detail: string(bytes.TrimSpace(b))}
		}
		return nil, &APIError{p}
	}
	if out == nil {
		return resp, nil
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNoContent {
		return resp, nil
	}
	return resp, json.NewDecoder(resp.Body).Decode(out)
}

// FreeMemory asks the daemon to collect garbage and return free memory to
// the operating system (POST /api/v1/debug/free-memory); it returns the
// daemon's heap figures afterwards.
func (c *Client) FreeMemory() (map[string]uint64, error) {
	var out map[string]uint64
	err := c.doJSON("POST", "/api/v1/debug/free-memory", nil, &out)
	return out, err
}

func (c *Client) doJSON(method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	_, err := c.do(method, path, body, "application/json", out)
	return err
}

// esc escapes a path segment. The dot segments "." and ".." are
// percent-encoded too: as they are, HTTP clients and the server's path
// cleaning would take them for "this" and "parent" (RFC 3986 s5.2.4), and
// accounts of those names stored before names were checked could not be
// reached.
func esc(s string) string {
	if s == "." || s == ".." {
		return strings.Repeat("%2E", len(s))
	}
	return url.PathEscape(s)
}

// Accounts lists accounts.
func (c *Client) Accounts() ([]AccountView, error) {
	var out []AccountView
	return out, c.doJSON("GET", "/api/v1/accounts", nil, &out)
}

// CreateAccount creates an account.
func (c *Client) CreateAccount(req AccountRequest) (*AccountView, error) {
	var out AccountView
	return &out, c.doJSON("POST", "/api/v1/accounts", req, &out)
}

// UpdateAccount changes an account.
func (c *Client) UpdateAccount(name string, req AccountRequest) (*AccountView, error) {
	var out AccountView
	return &out, c.doJSON("PATCH", "/api/v1/accounts/"+esc(name), req, &out)
}

// DeleteAccount deletes an account.
func (c *Client) DeleteAccount(name string) error {
	return c.doJSON("DELETE", "/api/v1/accounts/"+esc(name), nil, &struct{}{})
}

// Messages lists a mailbox.
func (c *Client) Messages(user, mailbox string) (*MessageList, error) {
	var out MessageList
	return &out, c.doJSON("GET", "/api/v1/accounts/"+esc(user)+"/mailboxes/"+esc(mailbox), nil, &out)
}

// MWI returns an account's message-waiting state.
func (c *Client) MWI(user string) (*MWIView, error) {
	var out MWIView
	return &out, c.doJSON("GET", "/api/v1/accounts/"+esc(user)+"/mwi", nil, &out)
}

// Deposit uploads a file (audio or message).
func (c *Client) Deposit(body io.Reader, o DepositOptions) (*DepositView, error) {
	q := url.Values{}
	for k, v := range map[string]string{"mailbox": o.Mailbox, "from": o.From, "to": o.To, "subject": o.Subject} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if o.Urgent {
		q.Set("urgent", "true")
	}
	if o.Context != "" {
		q.Set("context", string(o.Context))
	}
	ct := "application/octet-stream"
	if o.AsMessage {
		ct = "message/rfc822"
	}
	if o.Size > 0 {
		body = &sizedBody{body, o.Size}
	}
	var out DepositView
	_, err := c.do("POST", "/api/v1/accounts/"+esc(o.User)+"/messages?"+q.Encode(), body, ct, &out)
	return &out, err
}

// sizedBody is a request body of known length (sent with Content-Length
// instead of chunked).
type sizedBody struct {
	io.Reader
	n int64
}

// Backup streams a backup into w; progress gets the bytes so far and the
// daemon's size estimate.
func (c *Client) Backup(w io.Writer, progress func(done, total int64)) (int64, error) {
	resp, err := c.do("GET", "/api/v1/backup", nil, "", nil)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	total, _ := strconv.ParseInt(resp.Header.Get("X-Lemonvox-Estimated-Size"), 10, 64)
	var n int64
	buf := make([]byte, 1<<20)
	last := time.Now()
	for {
		k, rerr := resp.Body.Read(buf)
		if k > 0 {
			if _, err := w.Write(buf[:k]); err != nil {
				return n, err
			}
			n += int64(k)
			if progress != nil && time.Since(last) > 100*time.Millisecond {
				progress(n, total)
				last = time.Now()
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return n, fmt.Errorf("backup interrupted: %w", rerr)
		}
	}
	if progress != nil {
		progress(n, n)
	}
	return n, nil
}
