package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/lemonvox/lemonvox/admin"
)

// queue lists or cancels queued submissions (held by FUTURERELEASE or
// waiting for the smarthost): "queue list [USER]", "queue cancel ID".
func (c *cli) queue(args []string) error {
	if len(args) == 0 {
		return usageError{"usage: lemonvox queue list [USER] | queue cancel ID"}
	}
	switch args[0] {
	case "list", "ls":
		return c.newFlags("queue list").withBackend(args[1:], -1, "queue list [USER]", func(pos []string, b backend) error {
			if len(pos) > 1 {
				return usageError{"usage: lemonvox queue list [USER]"}
			}
			user := ""
			if len(pos) == 1 {
				user = pos[0]
			}
			var vs []admin.QueueView
			var err error
			switch b := b.(type) {
			case *httpBackend:
				vs, err = b.c.Queue(user)
			case *storeBackend:
				vs, err = admin.QueueViews(b.st, user)
			}
			if err != nil {
				return err
			}
			for _, v := range vs {
				kind := "retry"
				if v.Hold {
					kind = "held"
				}
				fmt.Fprintf(c.stdout, "%s  %-5s  %s  %s  <%s> -> %s\n", v.ID, kind, v.Release.Local().Format(time.RFC3339),
					v.User, v.From, strings.Join(v.Rcpts, ", "))
			}
			return nil
		})
	case "cancel", "rm":
		return c.newFlags("queue cancel").withBackend(args[1:], 1, "queue cancel ID", func(pos []string, b backend) error {
			var err error
			switch b := b.(type) {
			case *httpBackend:
				err = b.c.CancelQueued(pos[0])
			case *storeBackend:
				err = b.st.Dequeue(pos[0])
			}
			if err == nil {
				fmt.Fprintf(c.stdout, "cancelled %s\n", pos[0])
			}
			return err
		})
	}
	return usageError{"unknown queue verb " + fmt.Sprintf("%q", args[0])}
}
