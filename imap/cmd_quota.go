package imap

import (
	"strings"

	"github.com/lemonvox/lemonvox/vmstore"
)

// RFC 9208 QUOTA. One quota root per account, "user/<name>" (the
// appliance's choice): STORAGE in units of 1024 octets and MESSAGE. Limits
// are set by the administrator (no QUOTASET, SETQUOTA is not offered).
func init() {
	registerCap("QUOTA", authenticated)
	registerCap("QUOTA=RES-STORAGE", authenticated)
	registerCap("QUOTA=RES-MESSAGE", authenticated)
	register("GETQUOTA", statesAuthSel, cmdGetQuota)
	register("GETQUOTAROOT", statesAuthSel, cmdGetQuotaRoot)
}

func (c *conn) quotaRoot() string { return "user/" + c.user }

// xwriteQuota writes the QUOTA response of the user's root; it reports
// false when the account has no limit (no root then).
func (c *conn) xwriteQuota() bool {
	acct, err := c.srv.Store.GetAccount(c.user)
	xcheckf(err, "reading account")
	if acct.Quota.Bytes == 0 && acct.Quota.Messages == 0 {
		return false
	}
	use, err := c.srv.Store.Usage(c.user)
	xcheckf(err, "reading usage")
	c.enc.Raw("* QUOTA ").Astring(c.quotaRoot()).Raw(" (")
	sp := ""
	if acct.Quota.Bytes > 0 {
		c.enc.Raw("STORAGE ").Number(uint64((use.Bytes + 1023) / 1024)).SP().Number(uint64(acct.Quota.Bytes / 1024))
		sp = " "
	}
	if acct.Quota.Messages > 0 {
		c.enc.Raw(sp).Raw("MESSAGE ").Number(uint64(use.Messages)).SP().Number(uint64(acct.Quota.Messages))
	}
	c.enc.Raw(")").CRLF()
	return true
}

func (c *conn) hasQuota() bool {
	acct, err := c.srv.Store.GetAccount(c.user)
	xcheckf(err, "reading account")
	return acct.Quota.Bytes > 0 || acct.Quota.Messages > 0
}

// RFC 9208 s4.2.1 GETQUOTA.
func cmdGetQuota(c *conn, tag string, p *parser) {
	p.xsp()
	root := p.xastring()
	p.xend()
	if !strings.EqualFold(root, c.quotaRoot()) || !c.hasQuota() {
		xusererrorf("NONEXISTENT", "no such quota root")
	}
	c.xwriteQuota()
}

// RFC 9208 s4.2.2 GETQUOTAROOT; works for names that do not exist yet.
func cmdGetQuotaRoot(c *conn, tag string, p *parser) {
	p.xsp()
	name := p.xmailbox()
	p.xend()
	if !vmstore.ValidMailboxName(name) {
		xusererrorf("CANNOT", "invalid mailbox name")
	}
	if !c.hasQuota() {
		c.enc.Raw("* QUOTAROOT ").Astring(c.mboxOut(name)).CRLF()
		return
	}
	c.enc.Raw("* QUOTAROOT ").Astring(c.mboxOut(name)).SP().Astring(c.quotaRoot()).CRLF()
	c.xwriteQuota()
}
